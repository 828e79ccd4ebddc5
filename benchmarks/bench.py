"""Every model x runtime x precision on the same images: quality (LPIPS, PSNR, SSIM, MSE, AE, dE2000,
colorfulness) under two protocols, latency (p50/p95, img/s), size, and parity with torch.

Protocols: ``paper`` resizes each photo to 256x256 before colorizing and compares at 256x256, as
published colorization tables do; ``deploy`` colorizes and compares at the photo's own resolution.
Runtimes and precisions come from the format table (``runtimes/formats.py``); the parity column is
``runtimes.runners.compare`` on ``parity_images()``, the numbers ``edge-colorizer compare`` prints.
A row that cannot be built or run says why in its note; it never stops the benchmark.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from compress.card import CARD_SUFFIX
from edge_colorizer.checkpoint import load_model
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule, GrayBaseline
from edge_colorizer.evaluate import LPIPS_MIN_SIDE, paper_view, read_truth, why_skipped
from edge_colorizer.inference import BUNDLED, EDGE_MODEL, resolve_model_path
from edge_colorizer.io import atomic_write, one_line, scan_inputs, write_bytes_atomic
from edge_colorizer.metrics import ae, colorfulness, delta_e2000, mse, psnr, ssim
from edge_colorizer.metrics.lpips import LPIPS, to_lpips_input
from edge_colorizer.models import create_model, list_models
from edge_colorizer.models.profile import count_macs, count_params
from edge_colorizer.stopping import check_stop
from edge_colorizer.timing import time_ms
from runtimes.artifacts import artifact_size
from runtimes.export import export_artifact, load_calibration, read_artifact_metadata
from runtimes.formats import RUNTIMES, format_for_runtime, load_format_module
from runtimes.models import artifact_format, unavailable
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, TorchRunner, compare, conform

PROTOCOLS = ("paper", "deploy")
PEERS = ("eccv16", "siggraph17")  # built with random weights: speed only
QUALITY_KEYS = ("lpips", "psnr", "ssim", "mse", "ae", "de2000", "cf")


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str, ...] = (EDGE_MODEL,)
    runtimes: tuple[str, ...] = ("torch", "onnxruntime")
    precisions: tuple[str, ...] = ("fp32",)
    data: str = ""
    out: str = "out/bench"
    size: int = 0  # network input size; 0 = each model's own (its stored size, else DEFAULT_SIZE)
    max_images: int = 0  # 0 = all
    max_side: int = 1920  # deploy protocol: photos larger than this are downscaled first
    time_height: int = 256
    time_width: int = 256
    throughput_batch: int = 8
    repeats: int = 20
    warmup: int = 3
    threads: int = 0  # 0 = torch default
    lpips_net: str = "alex"
    calibration: str = ""  # folder of calibration photos, for the precisions that need them (int8)
    calibration_images: int = 32


@dataclass
class Row:
    model: str
    runtime: str
    precision: str
    note: str = ""
    params: int = 0
    gmacs: float = 0.0
    size_mb: float = 0.0
    net_size: int = 0  # the network input size the row ran at (0: not known)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # protocol -> metric -> value
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    img_per_s: float = float("nan")
    parity_max: float = float("nan")
    parity_mean: float = float("nan")
    parity_ok: bool | None = None  # within the format table's tolerance for this precision
    threads: int | None = None  # what the runtime reports it runs with


@dataclass
class ModelSpec:
    label: str
    net: torch.nn.Module | None
    checkpoint: Path | None
    note: str
    quality: bool  # False for random-weight peers
    artifact: Path | None = None  # an exported model (student-int8): measured in its own runtime only
    card: dict = field(default_factory=dict)  # what a compressed artifact's card says (params, parent)

    def net_size(self, cfg: BenchConfig) -> int:
        """The size a checkpoint runs at: ``--size`` if given, else the one stored with it, else the default."""
        return cfg.size or getattr(self.net, "input_size", None) or DEFAULT_SIZE


def _is_artifact(spec: str) -> bool:
    """Whether ``spec`` names an exported artifact (one row), without loading anything."""
    if spec == "gray" or spec in PEERS or spec in list_models():
        return False
    try:
        return artifact_format(resolve_model_path(spec)) is not None
    except (ValueError, FileNotFoundError, KeyError):  # resolve_model says why, at its turn
        return False


def resolve_model(spec: str) -> ModelSpec:
    if spec == "gray":
        return ModelSpec("gray (ab=0)", GrayBaseline(), None, "baseline floor", True)
    if spec in PEERS:
        return ModelSpec(spec, create_model(spec).eval(), None, "architecture only, speed only", False)
    if spec in list_models():
        raise ValueError(f"{spec!r} is an architecture without weights; pass a checkpoint or a bundled model")
    path = resolve_model_path(spec)
    label = spec if spec in BUNDLED else path.stem
    fmt = artifact_format(path)
    if fmt is not None:
        card = Path(f"{path}{CARD_SUFFIX}")
        info = json.loads(card.read_text()) if card.is_file() else {}
        return ModelSpec(label, None, None, f"{fmt.name} artifact", True, artifact=path, card=info)
    return ModelSpec(label, load_model(path), path, "", True)


Status = Callable[[str], None]  # what a case is doing now (the command shows it in its bar)


def _quiet(_: str) -> None:
    pass


def artifact_row(spec: ModelSpec, views: dict, lpips: LPIPS, cfg: BenchConfig, status: Status = _quiet) -> Row:
    """The one row of an exported artifact: its own runtime and precision (parity: its card's, vs its parent)."""
    fmt = artifact_format(spec.artifact)
    meta = read_artifact_metadata(fmt, spec.artifact)
    params = spec.card.get("params", 0)
    row = Row(spec.label, fmt.runtime, meta.get("precision", "?"), spec.note, params, spec.card.get("gmacs", 0.0))
    row.size_mb = artifact_size(spec.artifact)
    row.net_size = int(meta.get("network_size", 0) or 0)  # fixed when it was exported
    if spec.card.get("parent"):
        row.note += f" of {spec.card['parent'].split(' (')[0]}"
    with load_format_module(fmt).Runner(spec.artifact, threads=cfg.threads, name=spec.label) as runner:
        measure_row(row, runner, spec, views, lpips, cfg, None, status)
    return row


def time_runner(runner: BaseRunner, cfg: BenchConfig) -> tuple[float, float, float]:
    """(p50 ms, p95 ms) at batch 1 and images/s at the throughput batch, after warm-up."""
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, cfg.time_height, cfg.time_width, 3), dtype=np.uint8)
    one = conform(one, runner.inputs[0])[0]  # a fixed-shape runtime is timed at its own shape
    single = time_ms(lambda: runner.infer({INPUT_NAME: one}), cfg.repeats, cfg.warmup, runner.synchronize)
    batches = conform(np.repeat(one, cfg.throughput_batch, axis=0), runner.inputs[0])

    def throughput_batch() -> None:
        for batch in batches:
            runner.infer({INPUT_NAME: batch})

    # two warm-ups: a runner may specialise for a shape on its second sighting (OpenVINO compiles then)
    batched = time_ms(throughput_batch, max(2, cfg.repeats // 4), 2, runner.synchronize)
    img_per_s = cfg.throughput_batch / (sum(batched.times_ms) / len(batched.times_ms) / 1000)
    return single.p50, single.p95, img_per_s


def load_eval_images(cfg: BenchConfig, log: Callable[[str], None] = print) -> list[np.ndarray]:
    """The photos every row is scored on (the first ``max_images`` found); one that cannot serve as
    ground truth (unreadable, gray, too small for LPIPS) is left out with one line, as ``evaluate`` does."""
    scan = scan_inputs([cfg.data])
    for problem in scan.problems:
        if problem.kind != "empty":
            log(f"skip {problem}")
    found = scan.images[: cfg.max_images] if cfg.max_images else scan.images
    images = []
    for item in found:
        try:
            truth = read_truth(item.path, cfg.max_side, min_side=LPIPS_MIN_SIDE, options=frozenset({"--max-side"}))
            images.append(truth)
        except Exception as exc:  # one photo never ends the benchmark
            check_stop()  # a stop that a library swallowed is no failure to go on past
            log(f"skip {why_skipped(item.path, exc)}")
    if not images:
        raise ValueError(f"{cfg.data}: no images to benchmark on")
    return images


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


class NotRun(Exception):
    """A row that cannot be measured here (precision not declared, SDK missing, no GPU, ...)."""


def make_runner(
    spec: ModelSpec, runtime: str, precision: str, cfg: BenchConfig, calibration: list[np.ndarray] | None = None
) -> tuple[BaseRunner, float]:
    """A runner and the size in MB of the artifact it runs; NotRun where the table or machine rules it out."""
    size = spec.net_size(cfg)
    colorizer = ColorizerModule(spec.net, size=size).eval()
    fmt = format_for_runtime(runtime)
    if fmt is None:
        if precision != "fp32":
            raise NotRun(f"torch runs fp32 only here (it is the reference), not {precision}")
        nbytes = spec.checkpoint.stat().st_size if spec.checkpoint else count_params(spec.net) * 4
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return TorchRunner(colorizer, device=device, name=f"{spec.label}/torch"), nbytes / 1e6
    if precision not in fmt.precisions:
        raise NotRun(f"{fmt.name} has no {precision} (it has {', '.join(fmt.precisions)})")
    why = unavailable(fmt)
    if why:
        raise NotRun(why)
    if precision in fmt.calibrated and not calibration:
        raise NotRun(f"{precision} needs calibration images (--calibration DIR)")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in spec.label)
    path = Path(cfg.out) / "artifacts" / f"{safe}_{size}_{precision}{fmt.suffix}"
    exported = export_artifact(
        colorizer, fmt.name, path, precision, calibration, spec.label, spec.checkpoint, force=True
    )
    from runtimes.formats import load_format_module

    runner = load_format_module(fmt).Runner(exported.path, threads=cfg.threads, name=f"{spec.label}/{runtime}")
    return runner, artifact_size(exported.path)


def _fits(runner: BaseRunner, images: list[np.ndarray]) -> bool:
    """Whether every image can go through the runner as it is (fixed-shape runtimes take one size)."""
    _, h, w, _ = runner.inputs[0].shape
    return all((h is None or x.shape[0] == h) and (w is None or x.shape[1] == w) for x in images)


def measure_row(
    row: Row,
    runner: BaseRunner,
    spec: ModelSpec,
    views: dict,
    lpips: LPIPS,
    cfg: BenchConfig,
    reference,
    status: Status = _quiet,
) -> dict[str, list[np.ndarray]]:
    """Fill ``row`` (quality, parity, timing) from an active runner; returns its outputs per protocol."""
    outputs: dict[str, list[np.ndarray]] = {}
    if spec.quality:
        for p in PROTOCOLS:
            if not _fits(runner, views[p]):
                row.note = (row.note + "; " if row.note else "") + f"{p}: fixed input shape, not scored"
                continue
            outputs[p] = []
            for i, x in enumerate(views[p]):
                status(f"{p} protocol, photo {i + 1}/{len(views[p])}")
                outputs[p].append(runner.infer({INPUT_NAME: x[None]})[OUTPUT_NAME][0])
            status(f"{p} protocol, scoring")
            row.quality[p] = quality(outputs[p], views[p], lpips)
    if reference is not None:
        status("parity vs torch")
        parity = compare(reference, runner)
        row.parity_max, row.parity_mean = float(parity.max_abs), parity.mean_abs
        fmt = format_for_runtime(row.runtime)
        row.parity_ok = parity.within(*fmt.tolerances[row.precision])
        if not row.parity_ok:
            row.note = (row.note + "; " if row.note else "") + "parity above the table's tolerance"
    status("timing")
    row.p50_ms, row.p95_ms, row.img_per_s = time_runner(runner, cfg)
    row.threads = runner.threads
    return outputs


def run_bench(
    cfg: BenchConfig,
    log: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[Row], int]:
    """All rows of the table, and the number of photos they were measured on. A row that cannot be built
    or whose runner fails (loading or inference) gets the reason in its note; the others go on.

    ``progress(what, cases done, cases in all)`` is told what each case is doing as it goes."""
    unknown = [r for r in cfg.runtimes if r not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtime {', '.join(unknown)}; known: {', '.join(RUNTIMES)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    images = load_eval_images(cfg, log)
    views = {"paper": [paper_view(x) for x in images], "deploy": images}
    calibration = load_calibration(cfg.calibration, cfg.calibration_images, log=log) if cfg.calibration else None
    lpips = LPIPS(cfg.lpips_net)
    rows: list[Row] = []
    total = sum(1 if _is_artifact(m) else len(cfg.runtimes) * len(cfg.precisions) for m in cfg.models)

    def case(label: str) -> Status:
        done = len(rows)
        return (lambda what: progress(f"{label}: {what}", done, total)) if progress else _quiet

    for model in cfg.models:  # one model in memory at a time
        spec = resolve_model(model)
        if spec.artifact is not None:
            log(f"bench {spec.label} ({spec.note})")
            try:
                rows.append(artifact_row(spec, views, lpips, cfg, case(spec.label)))
            except Exception as exc:  # its runtime missing or failing: a row saying so
                check_stop()  # a stop that a library swallowed is no failure to go on past
                rows.append(Row(spec.label, "?", "?", f"failed: {one_line(exc, with_type=False)}"))
            continue
        params = count_params(spec.net)
        size = spec.net_size(cfg)
        gmacs = count_macs(spec.net, size) / 1e9 if params else 0.0
        reference = TorchRunner(ColorizerModule(spec.net, size=size).eval(), name=f"{spec.label}/reference")
        # torch first: the order of the table
        for runtime in sorted(cfg.runtimes, key=lambda r: r != "torch"):
            for precision in cfg.precisions:
                log(f"bench {spec.label} / {runtime} / {precision}")
                status = case(f"{spec.label} / {runtime} / {precision}")
                row = Row(spec.label, runtime, precision, spec.note, params, gmacs, net_size=size if params else 0)
                try:
                    status("export" if format_for_runtime(runtime) else "load")
                    runner, row.size_mb = make_runner(spec, runtime, precision, cfg, calibration)
                except Exception as exc:  # NotRun, a failed export (parity gate), a missing SDK: a row
                    check_stop()  # a stop that a library swallowed is no failure to go on past
                    log(f"skip {spec.label} / {runtime} / {precision}: {one_line(exc)}")
                    row.note = f"not run: {one_line(exc, with_type=False)}"
                    rows.append(row)
                    continue
                try:
                    with reference, runner:
                        measure_row(
                            row, runner, spec, views, lpips, cfg, None if runtime == "torch" else reference, status
                        )
                except Exception as exc:  # a runtime that fails to load or to infer: this row only
                    check_stop()  # a stop that a library swallowed is no failure to go on past
                    log(f"failed {spec.label} / {runtime} / {precision}: {one_line(exc)}")
                    row = Row(
                        spec.label,
                        runtime,
                        precision,
                        f"failed: {one_line(exc, with_type=False)}",
                        params,
                        gmacs,
                        row.size_mb,
                        row.net_size,
                    )
                rows.append(row)
    if progress:
        progress("done", len(rows), total)
    return rows, len(images)


COLUMNS = (
    "model",
    "runtime",
    "precision",
    "params",
    "GMACs",
    "size MB",
    "net size",
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
                str(r.net_size) if r.net_size else "–",
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
        "network_size": cfg.size or "each model's stored size (else 256): the 'net size' column",
    }


def markdown(rows: list[Row], cfg: BenchConfig, n_images: int) -> str:
    env = environment(cfg)
    lines = [
        f"Images: {n_images} from `{cfg.data}`. Timing: {env['timing']}; torch threads {env['threads']}; "
        f"{env['processor']}; torch {env['torch']}; CUDA: {env['cuda'] or 'none'}. Network input: "
        + (f"{cfg.size}x{cfg.size} for every checkpoint." if cfg.size else "each model's own ('net size').")
        + " Artifacts run at the size they were exported at.",
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
    # each written whole or not at all (a stop while writing leaves the previous run's file, or none)
    write_bytes_atomic(paths["md"], markdown(rows, cfg, n_images).encode())
    table = io.StringIO(newline="")
    w = csv.writer(table)
    w.writerow(["protocol", *COLUMNS])
    for protocol in PROTOCOLS:
        for cells in table_rows(rows, protocol):
            w.writerow([protocol, *cells])
    write_bytes_atomic(paths["csv"], table.getvalue().encode())
    document = {
        "config": asdict(cfg),
        "environment": environment(cfg),
        "images": n_images,
        "rows": [asdict(r) for r in rows],
    }
    write_bytes_atomic(paths["json"], json.dumps(json_safe(document), indent=1, allow_nan=False).encode())
    pareto_plot(rows, paths["png"], cfg)
    return paths


def json_safe(value):
    """``value`` with every NaN or infinity replaced by None (``null``): JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


RUNTIME_MARKERS = {"torch": "o", "onnxruntime": "s", "openvino": "D", "litert": "^", "tensorrt": "P", "coreml": "v"}


def pareto_front(points: list[tuple[float, float]], tol: float = 0.0) -> list[int]:
    """Indices of the points no faster point beats on quality (latency, LPIPS: lower is better), by
    latency; a point must be better than every faster one by more than ``tol`` (LPIPS differences
    within it are noise: the same network in another runtime)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best - tol:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(rows: list[Row], path: Path, cfg: BenchConfig) -> None:
    """Quality against latency: one colour per model, one marker per runtime, hollow markers for INT8;
    the Pareto front with a 0.002 LPIPS tolerance (:func:`pareto_front`) joined and labelled, the rest
    in the legend only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    models = list(dict.fromkeys(r.model for r in rows))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    scored = [r for r in rows if not np.isnan(r.p50_ms) and r.quality.get("paper", {}).get("lpips") is not None]
    for r in rows:
        if np.isnan(r.p50_ms) or r in scored:
            continue
        # speed-only peers (random weights): a vertical line at their latency
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
    for r in scored:
        c = colours[r.model]
        hollow = r.precision == "int8"
        ax.scatter(
            r.p50_ms,
            r.quality["paper"]["lpips"],
            s=42,
            marker=RUNTIME_MARKERS.get(r.runtime, "X"),
            facecolors="none" if hollow else c,
            edgecolors=c,
            linewidths=1.4,
            zorder=3,
        )
    points = [(r.p50_ms, r.quality["paper"]["lpips"]) for r in scored]
    front = pareto_front(points, tol=0.002)
    if len(front) > 1:
        ax.step(
            [points[i][0] for i in front],
            [points[i][1] for i in front],
            where="post",
            color="black",
            lw=0.8,
            alpha=0.6,
            zorder=2,
        )
    for k, i in enumerate(front):
        r = scored[i]
        ax.annotate(
            f"{r.model} / {r.runtime} / {r.precision}",
            points[i],
            textcoords="offset points",
            xytext=(6, -12 if k % 2 else 6),
            fontsize=7.5,
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"p50 latency, ms (batch 1, {cfg.time_height}x{cfg.time_width}, log scale)")
    ax.set_ylabel("LPIPS (AlexNet, paper protocol), lower is better")
    ax.set_title("quality vs latency (labelled: the Pareto front, LPIPS steps > 0.002)")
    ax.grid(True, which="both", alpha=0.3)
    handles = [
        Line2D([], [], ls="", marker="o", color=colours[m], label=m)
        for m in models
        if any(r.model == m for r in scored)
    ]
    runtimes = list(dict.fromkeys(r.runtime for r in scored))
    handles += [
        Line2D([], [], ls="", marker=RUNTIME_MARKERS.get(rt, "X"), color="black", mfc="black", label=rt)
        for rt in runtimes
    ]
    if any(r.precision == "int8" for r in scored):
        handles.append(Line2D([], [], ls="", marker="o", color="black", mfc="none", label="int8 (hollow)"))
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)


def lpips_gate(rows: list[Row], limit: float) -> list[str]:
    """Rows (with quality, not the gray floor) whose paper-protocol LPIPS is above ``limit``."""
    return [
        f"{r.model}/{r.runtime}/{r.precision}: LPIPS {r.quality['paper']['lpips']:.4f} > {limit}"
        for r in rows
        if "paper" in r.quality and r.note != "baseline floor" and r.quality["paper"]["lpips"] > limit
    ]
