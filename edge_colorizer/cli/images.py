"""Commands over images: colorize, evaluate, models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import (
    chroma_gain_option,
    converters_quiet,
    device_option,
    max_pixels_option,
    no_traceback,
    not_empty,
    progress_bar,
    say,
    size_option,
    stop_cleanly,
)
from edge_colorizer.inference import DEFAULT_MODEL, EDGE_MODEL
from edge_colorizer.io import new_folders_dropped_on_failure, shown


@main.command()
@click.argument("paths", nargs=-1, required=True, callback=not_empty)
@click.option("--out", "out_dir", required=True, help="Output folder.", callback=not_empty)
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Bundled model, checkpoint or exported artifact (.onnx, ...).",
    callback=not_empty,
)
@size_option()
@device_option
@chroma_gain_option("default: the gain stored with the model (the teacher's 1.2; 1 for the others).")
@click.option("--side-by-side", is_flag=True, help="Write a gray|colour PNG grid instead of the colour image.")
@max_pixels_option()
def colorize(paths, out_dir, model, size, chroma_gain, device, side_by_side, max_pixels) -> None:
    """Colorize images (files, folders, globs) into OUT.

    Each input that cannot be colorized gets one line on stderr and the others go on; the exit code
    is then 1. See "Promises" in the README for what happens to each kind of input.
    """
    from edge_colorizer.inference import colorize_files
    from runtimes.models import open_colorizer

    # stopped, failed, or every input refused: no empty output folder is left
    with new_folders_dropped_on_failure(out_dir):
        with stop_cleanly(), no_traceback("colorize"):
            try:
                with converters_quiet():  # a runtime's import noise (an exported model's SDK)
                    colorizer = open_colorizer(model, size=size, device=device, chroma_gain=chroma_gain)
            except (ValueError, FileNotFoundError, KeyError, ImportError, RuntimeError) as exc:
                raise click.ClickException(shown(str(exc))) from None
            with progress_bar() as progress:
                task = progress.add_task("colorize", total=None)
                try:
                    report = colorize_files(
                        paths,
                        out_dir,
                        colorizer,
                        side_by_side=side_by_side,
                        on_error=lambda m: say(f"error: {m}"),
                        progress=lambda _: progress.advance(task),
                        max_pixels=max_pixels,
                        on_total=lambda n: progress.update(task, total=n),
                    )
                except ValueError as exc:  # the output folder cannot be used at all
                    raise click.ClickException(shown(str(exc))) from None
        if report.swept:
            swept = len(report.swept)
            say(f"removed {swept} unfinished temporary file(s) left in {shown(out_dir)} by an interrupted run")
        where = f"to {shown(Path(out_dir).resolve())} " if report.written else ""
        written, failed = len(report.written), len(report.failed)
        click.echo(f"wrote {written} image(s) {where}in {report.seconds:.1f} s; {failed} failed")
        if report.failed:
            sys.exit(1)  # inside: an output folder this run made and left empty goes too


@main.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "models", multiple=True, default=[EDGE_MODEL], show_default=True, callback=not_empty)
@size_option()
@click.option(
    "--max-side",
    type=click.IntRange(0),
    default=512,
    show_default=True,
    help="Resize photos so the long side is at most this (0: their own size).",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.", callback=not_empty
)
@click.option("--time", "timing", is_flag=True, help="Also time each model on one 256x256 and one 1080p image.")
@click.option(
    "--grid",
    type=click.Path(dir_okay=False),
    help="Write a PNG: gray | each model | truth, 6 photos.",
    callback=not_empty,
)
@click.option("--lpips/--no-lpips", "with_lpips", default=True, show_default=True, help="Also LPIPS (AlexNet).")
@max_pixels_option()
def evaluate_cmd(data, models, size, max_side, json_path, timing, grid, with_lpips, max_pixels) -> None:
    """PSNR, LPIPS and colorfulness of models vs ground truth and the gray baseline.

    A photo that cannot be scored (unreadable, gray, too small for LPIPS) gets one line and is left
    out of the means; the exit code is then 1.
    """
    from edge_colorizer.evaluate import EVALUATE_OPTIONS, evaluate
    from edge_colorizer.io import IMAGE_SUFFIXES, check_outside, check_writable_file, write_bytes_atomic
    from runtimes.models import open_colorizer

    with stop_cleanly(), no_traceback("evaluate"):
        try:
            # what is written at the end is checked first: a long run is never lost to a bad path
            if json_path:
                check_writable_file(json_path, (".json",))
            if grid:
                check_writable_file(grid, IMAGE_SUFFIXES)
                check_outside(grid, data, "--data")  # it would replace one of the photos, or become one
            colorizers = {m: open_colorizer(m, size=size) for m in models}
            lpips = None
            if with_lpips:
                from edge_colorizer.metrics.lpips import LPIPS

                lpips = LPIPS("alex")
        except (ValueError, FileNotFoundError, ImportError) as exc:
            raise click.ClickException(shown(str(exc))) from None
        skipped: list[str] = []

        def skip(message: str) -> None:
            skipped.append(message)
            say(f"error: {message}")

        with progress_bar() as progress:
            task = progress.add_task("evaluate", total=None)
            try:
                results = evaluate(
                    colorizers,
                    data,
                    max_side=max_side,
                    progress=lambda _: progress.advance(task),
                    lpips=lpips,
                    on_skip=skip,
                    max_pixels=max_pixels,
                    on_total=lambda n: progress.update(task, total=n),
                    options=EVALUATE_OPTIONS,
                )
            except ValueError as exc:  # nothing left to score
                raise click.ClickException(shown(str(exc))) from None
        click.echo("| model | images | PSNR dB | LPIPS | CF | CF truth | CF ratio |\n|---|---|---|---|---|---|---|")
        for r in results:
            lp = f"{r.lpips:.4f}" if r.lpips is not None else "–"
            click.echo(
                f"| {shown(r.name)} | {r.images} | {r.psnr_db:.2f} | {lp} | {r.colorfulness:.1f} "
                f"| {r.colorfulness_truth:.1f} | {r.colorfulness_ratio:.2f} |"
            )
        times = {}
        if timing:
            from edge_colorizer.evaluate import time_colorizer

            click.echo("\n| model | input | threads | p50 ms | p95 ms |\n|---|---|---|---|---|")
            for name, colorizer in colorizers.items():
                for h, w in ((256, 256), (1080, 1920)):
                    t = time_colorizer(colorizer, h, w)
                    times.setdefault(name, []).append(t)
                    click.echo(f"| {shown(name)} | {h}x{w} | {t['threads']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} |")
        if grid:
            from edge_colorizer.evaluate import comparison_grid

            try:
                written = comparison_grid(colorizers, data, grid, max_pixels=max_pixels)
            except (ValueError, OSError) as exc:
                raise click.ClickException(_cannot_write(grid, exc)) from None
            click.echo(f"\nwrote {shown(written)} (columns: gray, {', '.join(map(shown, models))}, truth)")
        if json_path:
            from edge_colorizer.evaluate import results_json

            try:
                write_bytes_atomic(json_path, results_json(results, times, skipped).encode())
            except OSError as exc:
                raise click.ClickException(_cannot_write(json_path, exc)) from None
    if skipped:
        sys.exit(1)


def _cannot_write(path: str, exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"{shown(path)}: cannot write ({exc.strerror or exc})"
    return str(exc)


@main.command("models")
def models_cmd() -> None:
    """List the registered architectures, the bundled models and the export formats with their precisions."""
    from edge_colorizer.inference import BUNDLED
    from edge_colorizer.models import describe_model, list_models
    from runtimes.formats import FORMATS
    from runtimes.models import unavailable

    def role(name: str) -> str:
        if name == DEFAULT_MODEL:
            return "default of colorize"
        return "default of video, export, compare, evaluate, bench" if name == EDGE_MODEL else ""

    def table(title: str, rows: list[tuple[str, ...]]) -> None:
        click.echo(title)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for *cells, last in rows:
            click.echo(
                ("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + last).rstrip()
            )

    table(
        "architectures (train, or --model with a checkpoint of one):", [(n, describe_model(n)) for n in list_models()]
    )
    table(
        "bundled models (--model NAME):",
        [(n, p.name if p.exists() else f"{p.name} (missing)", role(n)) for n, p in BUNDLED.items()],
    )
    rows = []
    for fmt in FORMATS.values():
        precisions = ", ".join(p + ("*" if p in fmt.calibrated else "") for p in fmt.precisions)
        why = unavailable(fmt)
        name = f"NAME{fmt.suffix}" + ("/" if fmt.folder else "")
        rows.append((fmt.name, fmt.runtime, name, precisions, f"runs here: {'no, ' + why if why else 'yes'}"))
    table(
        "export formats (export --format; bench --runtimes: the second column; the artifact; * needs --calibration):",
        rows,
    )
