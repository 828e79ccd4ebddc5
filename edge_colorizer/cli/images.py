"""Commands over images: colorize, evaluate, models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import device_option, progress_bar, say, size_option


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--model", default="student", show_default=True, help="Bundled model name or checkpoint path.")
@size_option()
@device_option
@click.option("--side-by-side", is_flag=True, help="Write a gray|colour PNG grid instead of the colour image.")
def colorize(paths, out_dir, model, size, device, side_by_side) -> None:
    """Colorize images (files, folders, globs) into OUT."""
    from edge_colorizer.inference import colorize_files, find_images, load_colorizer

    try:
        total = len(find_images(paths))
        colorizer = load_colorizer(model, size=size, device=device)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    with progress_bar() as progress:
        task = progress.add_task("colorize", total=total)
        report = colorize_files(
            paths,
            out_dir,
            colorizer,
            side_by_side=side_by_side,
            on_error=lambda m: say(f"error: {m}"),
            progress=lambda _: progress.advance(task),
        )
    click.echo(
        f"wrote {len(report.written)} image(s) to {Path(out_dir).resolve()} "
        f"in {report.seconds:.1f} s; {len(report.failed)} failed"
    )
    if report.failed:
        sys.exit(1)


@main.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "models", multiple=True, default=["student"], show_default=True)
@size_option()
@click.option("--max-side", default=512, show_default=True, help="Resize photos so the long side is at most this.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@click.option("--time", "timing", is_flag=True, help="Also time each model on one 256x256 and one 1080p image.")
@click.option("--grid", type=click.Path(dir_okay=False), help="Write a PNG: gray | each model | truth, 6 photos.")
@click.option("--lpips/--no-lpips", "with_lpips", default=True, show_default=True, help="Also LPIPS (AlexNet).")
def evaluate_cmd(data, models, size, max_side, json_path, timing, grid, with_lpips) -> None:
    """PSNR, LPIPS and colorfulness of models vs ground truth and the gray baseline."""
    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.inference import load_colorizer

    try:
        colorizers = {m: load_colorizer(m, size=size) for m in models}
        lpips = None
        if with_lpips:
            from edge_colorizer.metrics.lpips import LPIPS

            lpips = LPIPS("alex")
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    with progress_bar() as progress:
        task = progress.add_task("evaluate", total=None)
        results = evaluate(colorizers, data, max_side=max_side, progress=lambda _: progress.advance(task), lpips=lpips)
    click.echo("| model | images | PSNR dB | LPIPS | CF | CF truth | CF ratio |\n|---|---|---|---|---|---|---|")
    for r in results:
        lp = f"{r.lpips:.4f}" if r.lpips is not None else "–"
        click.echo(
            f"| {r.name} | {r.images} | {r.psnr_db:.2f} | {lp} | {r.colorfulness:.1f} | {r.colorfulness_truth:.1f} "
            f"| {r.colorfulness_ratio:.2f} |"
        )
    times = {}
    if timing:
        from edge_colorizer.evaluate import time_colorizer

        click.echo("\n| model | input | threads | p50 ms | p95 ms |\n|---|---|---|---|---|")
        for name, colorizer in colorizers.items():
            for h, w in ((256, 256), (1080, 1920)):
                t = time_colorizer(colorizer, h, w)
                times.setdefault(name, []).append(t)
                click.echo(f"| {name} | {h}x{w} | {t['threads']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} |")
    if grid:
        from edge_colorizer.evaluate import comparison_grid

        click.echo(f"\nwrote {comparison_grid(colorizers, data, grid)} (columns: gray, {', '.join(models)}, truth)")
    if json_path:
        Path(json_path).write_text(json.dumps({"quality": [r.as_dict() for r in results], "timing": times}, indent=1))


@main.command("models")
def models_cmd() -> None:
    """List the registered architectures and the bundled models."""
    from edge_colorizer.inference import BUNDLED
    from edge_colorizer.models import describe_model, list_models

    for name in list_models():
        click.echo(f"{name:12s} {describe_model(name)}")
    for name, path in BUNDLED.items():
        click.echo(f"bundled: {name:8s} {path.name}{'' if path.exists() else ' (missing)'}")
