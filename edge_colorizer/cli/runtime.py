"""Commands over runtimes: export, bench (every model x runtime x precision)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import say
from edge_colorizer.colorizer import DEFAULT_SIZE
from runtimes.formats import FORMATS


@main.command()
@click.option("--model", default="student", show_default=True, help="Bundled model name or checkpoint path.")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="onnx", show_default=True)
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size baked into the graph.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Artifact path (default: <model>.<suffix>).")
def export(model, fmt, size, out_path) -> None:
    """Export the RGB-in/RGB-out colorizer (Lab kernel inside) to a runtime format."""
    from edge_colorizer.inference import load_colorizer, resolve_model_path
    from runtimes.formats import get_format

    spec = get_format(fmt)
    path = Path(out_path) if out_path else Path(f"{Path(model).stem}{spec.suffix}")
    try:
        colorizer = load_colorizer(model, size=size)
        if fmt == "onnx":
            from runtimes.onnx import MAX_ABS_DIFF, MEAN_ABS_DIFF, export_onnx

            path, parity = export_onnx(colorizer, path, model_name=model, checkpoint=resolve_model_path(model))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); parity vs torch: max {parity.max_abs} "
        f"(limit {MAX_ABS_DIFF}), mean {parity.mean_abs:.5f} (limit {MEAN_ABS_DIFF}) uint8 levels"
    )


@main.command()
@click.option(
    "--models",
    default="gray,student",
    show_default=True,
    help="Comma-separated: gray, bundled names, checkpoints, eccv16/siggraph17 (speed-only peers).",
)
@click.option("--runtimes", "runtimes_", default="torch,onnxruntime", show_default=True)
@click.option("--precisions", default="fp32", show_default=True)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour photos.")
@click.option("--out", default="out/bench", show_default=True, help="Folder for results.md/csv/json and pareto.png.")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size.")
@click.option("--max-images", default=0, show_default=True, help="Use only the first N photos (0 = all).")
@click.option("--time-size", default="256x256", show_default=True, help="HxW of the timed input.")
@click.option("--throughput-batch", default=8, show_default=True)
@click.option("--repeats", default=20, show_default=True)
@click.option("--threads", default=0, show_default=True, help="CPU threads for torch and ORT (0 = default).")
@click.option("--fail-above-lpips", type=float, default=None, help="Exit 1 if a model's LPIPS (paper) exceeds this.")
def bench(
    models,
    runtimes_,
    precisions,
    data,
    out,
    size,
    max_images,
    time_size,
    throughput_batch,
    repeats,
    threads,
    fail_above_lpips,
) -> None:
    """Quality (LPIPS, PSNR, SSIM, ...) vs latency for every model x runtime x precision."""
    from benchmarks.bench import BenchConfig, lpips_gate, markdown, run_bench, write_outputs

    try:
        h, w = (int(v) for v in time_size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW, got {time_size!r}", param_hint="--time-size") from None
    cfg = BenchConfig(
        models=tuple(m for m in models.split(",") if m),
        runtimes=tuple(runtimes_.split(",")),
        precisions=tuple(precisions.split(",")),
        data=data,
        out=out,
        size=size,
        max_images=max_images,
        time_height=h,
        time_width=w,
        throughput_batch=throughput_batch,
        repeats=repeats,
        threads=threads,
    )
    try:
        rows, n_images = run_bench(cfg, log=say)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    paths = write_outputs(rows, cfg, n_images)
    click.echo(markdown(rows, cfg, n_images))
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    if fail_above_lpips is not None:
        failures = lpips_gate(rows, fail_above_lpips)
        for line in failures:
            say(f"LPIPS gate: {line}")
        if failures:
            sys.exit(1)
