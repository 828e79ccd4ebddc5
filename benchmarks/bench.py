"""Every model x runtime x precision on the same images: quality (LPIPS, PSNR, SSIM, MSE, AE, dE2000,
colorfulness) under two protocols, latency (p50/p95, img/s), size, and parity with torch.

Protocols: ``paper`` resizes each photo to 256x256 before colorizing and compares at 256x256, as
published colorization tables do; ``deploy`` colorizes and compares at the photo's own resolution.
"""

from __future__ import annotations

import csv
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.profile import count_macs, count_params
from edge_colorizer.checkpoint import load_model
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule, GrayBaseline
from edge_colorizer.inference import BUNDLED, resolve_model_path
from edge_colorizer.io import find_images, read_image
from edge_colorizer.metrics import ae, colorfulness, delta_e2000, mse, psnr, ssim
from edge_colorizer.metrics.lpips import LPIPS, to_lpips_input
from edge_colorizer.models import create_model, list_models
from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, TorchRunner

PROTOCOLS = ("paper", "deploy")
PAPER_SIZE = 256
RUNTIMES = ("torch",) + tuple(f.runtime for f in FORMATS.values())
PEERS = ("eccv16", "siggraph17")  # built with random weights: speed only
QUALITY_KEYS = ("lpips", "psnr", "ssim", "mse", "ae", "de2000", "cf")


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str, ...] = ("student",)
    runtimes: tuple[str, ...] = ("torch", "onnxruntime")
    precisions: tuple[str, ...] = ("fp32",)
    data: str = ""
    out: str = "out/bench"
    size: int = DEFAULT_SIZE  # network input size
    max_images: int = 0  # 0 = all
    max_side: int = 1920  # deploy protocol: photos larger than this are downscaled first
    time_height: int = 256
    time_width: int = 256
    throughput_batch: int = 8
    repeats: int = 20
    warmup: int = 3
    threads: int = 0  # 0 = torch default
    lpips_net: str = "alex"


@dataclass
class Row:
    model: str
    runtime: str
    precision: str
    note: str = ""
    params: int = 0
    gmacs: float = 0.0
    size_mb: float = 0.0
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # protocol -> metric -> value
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    img_per_s: float = float("nan")
    parity_max: float = float("nan")
    parity_mean: float = float("nan")


@dataclass
class ModelSpec:
    label: str
    net: torch.nn.Module
    checkpoint: Path | None
    note: str
    quality: bool  # False for random-weight peers


def resolve_model(spec: str) -> ModelSpec:
    if spec == "gray":
        return ModelSpec("gray (ab=0)", GrayBaseline(), None, "baseline floor", True)
    if spec in PEERS:
        return ModelSpec(spec, create_model(spec).eval(), None, "architecture only, speed only", False)
    if spec in list_models():
        raise ValueError(f"{spec!r} is an architecture without weights; pass a checkpoint or a bundled model")
    path = resolve_model_path(spec)
    return ModelSpec(spec if spec in BUNDLED else path.stem, load_model(path), path, "", True)


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(q * (len(sorted_ms) - 1)))]


def time_runner(runner: BaseRunner, cfg: BenchConfig) -> tuple[float, float, float]:
    """(p50 ms, p95 ms) at batch 1 and images/s at the throughput batch, after warm-up."""
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, cfg.time_height, cfg.time_width, 3), dtype=np.uint8)
    times = []
    for i in range(cfg.warmup + cfg.repeats):
        runner.synchronize()
        t = time.perf_counter()
        runner.infer({INPUT_NAME: one})
        runner.synchronize()
        if i >= cfg.warmup:
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    batch = np.repeat(one, cfg.throughput_batch, axis=0)
    runner.infer({INPUT_NAME: batch})
    n_runs = max(2, cfg.repeats // 4)
    runner.synchronize()
    t = time.perf_counter()
    for _ in range(n_runs):
        runner.infer({INPUT_NAME: batch})
    runner.synchronize()
    img_per_s = n_runs * cfg.throughput_batch / (time.perf_counter() - t)
    return statistics.median(times), _percentile(times, 0.95), img_per_s


def load_eval_images(cfg: BenchConfig) -> list[np.ndarray]:
    paths = find_images([cfg.data])
    if cfg.max_images:
        paths = paths[: cfg.max_images]
    images = []
    for p in paths:
        rgb = read_image(p).rgb
        if max(rgb.shape[:2]) > cfg.max_side:
            img = Image.fromarray(rgb)
            s = cfg.max_side / max(img.size)
            rgb = np.asarray(img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS))
        images.append(rgb)
    if not images:
        raise ValueError(f"{cfg.data}: no images to benchmark on")
    return images


def paper_view(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((PAPER_SIZE, PAPER_SIZE), Image.BICUBIC))


def quality(outputs: list[np.ndarray], truths: list[np.ndarray], lpips: LPIPS) -> dict[str, float]:
    rows = []
    with torch.inference_mode():
        for pred, truth in zip(outputs, truths, strict=True):
            rows.append(
                {
                    "lpips": float(lpips(to_lpips_input(pred), to_lpips_input(truth))),
                    "psnr": psnr(pred, truth),
                    "ssim": ssim(pred, truth),
                    "mse": mse(pred, truth),
                    "ae": ae(pred, truth),
                    "de2000": delta_e2000(pred, truth),
                    "cf": colorfulness(pred),
                }
            )
    result = {k: float(np.mean([r[k] for r in rows])) for k in QUALITY_KEYS}
    # dCF over the whole set: mean colorfulness of predictions minus that of the ground truth
    result["dcf"] = result["cf"] - float(np.mean([colorfulness(t) for t in truths]))
    return result


def make_runner(spec: ModelSpec, runtime: str, precision: str, cfg: BenchConfig) -> tuple[BaseRunner, float]:
    """A runner and the size in MB of the artifact it runs."""
    colorizer = ColorizerModule(spec.net, size=cfg.size).eval()
    if precision != "fp32":
        raise ValueError(f"precision {precision!r} is not implemented yet (fp32 only)")
    if runtime == "torch":
        size = spec.checkpoint.stat().st_size if spec.checkpoint else count_params(spec.net) * 4
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return TorchRunner(colorizer, device=device, name=f"{spec.label}/torch"), size / 1e6
    if runtime == "onnxruntime":
        from runtimes.onnx import OrtRunner, export_onnx

        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in spec.label)
        path, _ = export_onnx(
            colorizer,
            Path(cfg.out) / "artifacts" / f"{safe}_{cfg.size}.onnx",
            model_name=spec.label,
            checkpoint=spec.checkpoint,
        )
        return OrtRunner(path, threads=cfg.threads, name=f"{spec.label}/onnxruntime"), path.stat().st_size / 1e6
    raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = print) -> tuple[list[Row], int]:
    """All rows of the table, and the number of photos they were measured on."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    images = load_eval_images(cfg)
    views = {"paper": [paper_view(x) for x in images], "deploy": images}
    lpips = LPIPS(cfg.lpips_net)
    rows: list[Row] = []
    for model in cfg.models:
        spec = resolve_model(model)
        params = count_params(spec.net)
        gmacs = count_macs(spec.net, cfg.size) / 1e9 if params else 0.0
        torch_outputs: dict[str, list[np.ndarray]] = {}
        # torch first: it is the reference every other runtime's parity is measured against
        for runtime in sorted(cfg.runtimes, key=lambda r: r != "torch"):
            for precision in cfg.precisions:
                log(f"bench {spec.label} / {runtime} / {precision}")
                try:
                    runner, size_mb = make_runner(spec, runtime, precision, cfg)
                except (RuntimeError, ValueError) as exc:  # e.g. an export that fails its parity check
                    log(f"skip {spec.label} / {runtime} / {precision}: {exc}")
                    rows.append(Row(spec.label, runtime, precision, f"not run: {exc}", params, gmacs))
                    continue
                row = Row(spec.label, runtime, precision, spec.note, params, gmacs, size_mb)
                with runner:
                    if spec.quality:
                        outputs = {
                            p: [runner.infer({INPUT_NAME: x[None]})[OUTPUT_NAME][0] for x in views[p]]
                            for p in PROTOCOLS
                        }
                        row.quality = {p: quality(outputs[p], views[p], lpips) for p in PROTOCOLS}
                        if runtime == "torch" and precision == "fp32":
                            torch_outputs = outputs
                        elif torch_outputs:
                            diffs = [
                                np.abs(a.astype(np.int16) - b.astype(np.int16))
                                for p in PROTOCOLS
                                for a, b in zip(torch_outputs[p], outputs[p], strict=True)
                            ]
                            row.parity_max = float(max(d.max() for d in diffs))
                            row.parity_mean = float(np.mean([d.mean() for d in diffs]))
                    row.p50_ms, row.p95_ms, row.img_per_s = time_runner(runner, cfg)
                rows.append(row)
    return rows, len(images)


COLUMNS = (
    "model",
    "runtime",
    "precision",
    "params",
    "GMACs",
    "size MB",
    "LPIPS",
    "PSNR",
    "SSIM",
    "MSE",
    "AE",
    "ΔE2000",
    "CF",
    "ΔCF",
    "p50 ms",
    "p95 ms",
    "img/s",
    "parity vs torch (max/mean)",
    "note",
)


def _fmt(v: float, digits: int) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def table_rows(rows: list[Row], protocol: str) -> list[list[str]]:
    out = []
    for r in rows:
        q = r.quality.get(protocol, {})
        g = q.get
        out.append(
            [
                r.model,
                r.runtime,
                r.precision,
                f"{r.params / 1e6:.2f}M",
                _fmt(r.gmacs, 2),
                _fmt(r.size_mb, 2),
                _fmt(g("lpips", float("nan")), 4),
                _fmt(g("psnr", float("nan")), 2),
                _fmt(g("ssim", float("nan")), 4),
                _fmt(g("mse", float("nan")), 1),
                _fmt(g("ae", float("nan")), 2),
                _fmt(g("de2000", float("nan")), 2),
                _fmt(g("cf", float("nan")), 1),
                _fmt(g("dcf", float("nan")), 1),
                _fmt(r.p50_ms, 1),
                _fmt(r.p95_ms, 1),
                _fmt(r.img_per_s, 1),
                "–" if np.isnan(r.parity_max) else f"{r.parity_max:.0f} / {r.parity_mean:.4f}",
                r.note,
            ]
        )
    return out


def environment(cfg: BenchConfig) -> dict:
    return {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "timing": f"batch 1 at {cfg.time_height}x{cfg.time_width}, {cfg.warmup} warm-up + {cfg.repeats} timed runs "
        f"(perf_counter); img/s at batch {cfg.throughput_batch}",
        "network_size": cfg.size,
    }


def markdown(rows: list[Row], cfg: BenchConfig, n_images: int) -> str:
    env = environment(cfg)
    lines = [
        f"Images: {n_images} from `{cfg.data}`. Timing: {env['timing']}; torch threads {env['threads']}; "
        f"{env['processor']}; torch {env['torch']}; CUDA: {env['cuda'] or 'none'}.",
        "",
    ]
    for protocol in PROTOCOLS:
        title = (
            "paper protocol (256x256, as published tables)"
            if protocol == "paper"
            else f"deploy protocol (full resolution, long side ≤ {cfg.max_side})"
        )
        lines += [f"### Quality: {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows, protocol)]
        lines.append("")
    return "\n".join(lines)


def write_outputs(rows: list[Row], cfg: BenchConfig, n_images: int) -> dict[str, Path]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out / "results.md",
        "csv": out / "results.csv",
        "json": out / "results.json",
        "png": out / "pareto.png",
    }
    paths["md"].write_text(markdown(rows, cfg, n_images))
    with open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["protocol", *COLUMNS])
        for protocol in PROTOCOLS:
            for cells in table_rows(rows, protocol):
                w.writerow([protocol, *cells])
    paths["json"].write_text(
        json.dumps(
            {
                "config": asdict(cfg),
                "environment": environment(cfg),
                "images": n_images,
                "rows": [asdict(r) for r in rows],
            },
            indent=1,
        )
    )
    pareto_plot(rows, paths["png"], cfg)
    return paths


def pareto_plot(rows: list[Row], path: Path, cfg: BenchConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, r in enumerate(rows):
        lp = r.quality.get("paper", {}).get("lpips")
        if np.isnan(r.p50_ms):  # a row that could not run has nothing to plot
            continue
        label = f"{r.model} / {r.runtime} / {r.precision}"
        if lp is None:  # speed-only peers: a vertical line at their latency
            ax.axvline(r.p50_ms, color="gray", ls="--", lw=0.8)
            ax.text(
                r.p50_ms,
                0.98,
                f" {r.model} ({r.runtime}, speed only)",
                rotation=90,
                va="top",
                fontsize=7,
                transform=ax.get_xaxis_transform(),
                color="gray",
            )
            continue
        ax.scatter(r.p50_ms, lp, s=30)
        ax.annotate(label, (r.p50_ms, lp), textcoords="offset points", xytext=(4, 4 + 9 * (i % 3)), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"p50 latency, ms (batch 1, {cfg.time_height}x{cfg.time_width}, log scale)")
    ax.set_ylabel("LPIPS (AlexNet, paper protocol) — lower is better")
    ax.set_title("edge-colorizer: quality vs latency")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def lpips_gate(rows: list[Row], limit: float) -> list[str]:
    """Rows (with quality, not the gray floor) whose paper-protocol LPIPS is above ``limit``."""
    return [
        f"{r.model}/{r.runtime}/{r.precision}: LPIPS {r.quality['paper']['lpips']:.4f} > {limit}"
        for r in rows
        if "paper" in r.quality and r.note != "baseline floor" and r.quality["paper"]["lpips"] > limit
    ]
