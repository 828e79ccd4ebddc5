"""Commands over runtimes: export, bench (every model x runtime x precision), compare (cross-runtime parity).

Every choice of format, runtime and precision comes from the table in ``runtimes/formats.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import (
    FiniteRange,
    chroma_gain_option,
    converters_quiet,
    no_traceback,
    not_empty,
    progress_bar,
    say,
    size_option,
    stop_cleanly,
    threads_option,
    working,
)
from edge_colorizer.inference import EDGE_MODEL
from edge_colorizer.io import shown
from edge_colorizer.stopping import check_stop
from runtimes.formats import FORMATS, RUNTIMES

LOCAL_FORMATS = tuple(f.name for f in FORMATS.values() if f.runs_on_linux and not f.needs_gpu)
PRECISIONS = tuple(dict.fromkeys(p for f in FORMATS.values() for p in ("fp32", *f.precisions)))


MAX_SIDE = 8192  # of a fixed or timed input shape: 8K video's width; beyond it a graph wants tens of GB


def parse_hw(text: str, option: str, least: int = 1) -> tuple[int, int]:
    """``"HxW"`` as (H, W), each from ``least`` to ``MAX_SIDE``; a usage error naming ``option`` otherwise."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if min(h, w) < least or max(h, w) > MAX_SIDE:
            raise ValueError
    except ValueError:
        raise click.BadParameter(
            f"expected HxW with H, W from {least} to {MAX_SIDE}, got {text!r}", param_hint=option
        ) from None
    return h, w


def _listed(known, what: str):
    """A click callback for a comma-separated list whose every item must be in ``known``."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
        unknown = [v for v in items if v not in known]
        if unknown or not items:
            raise click.BadParameter(
                f"unknown {what} {', '.join(map(repr, unknown)) or '(none)'}; known: {', '.join(known)}"
            )
        return items

    return check


calibration_option = click.option(
    "--calibration",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of photos like the real inputs (not the evaluation set); int8 needs it.",
)
calibration_images_option = click.option(
    "--calibration-images", type=click.IntRange(1), default=32, show_default=True, help="Use at most N of them."
)


# where a format that takes any image size still bounds it
SIZE_NOTES = {"coreml": " from 64 to 4096 px a side"}


def _calibration(folder: str | None, count: int):
    from runtimes.export import load_calibration

    return load_calibration(folder, max_images=count, log=say) if folder else None


@main.command()
@click.option(
    "--model", default=EDGE_MODEL, show_default=True, help="Bundled model name or checkpoint path.", callback=not_empty
)
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="onnx", show_default=True)
@click.option(
    "--precision", type=click.Choice(PRECISIONS), default=None, help="Default: the format's first (see `models`)."
)
@size_option("Network input size baked into the artifact; default: the size stored with the model.")
@chroma_gain_option("baked into the artifact; default: the gain stored with the model.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(),
    help="Artifact path, ending in the format's suffix (see `models`); default: <model>[_<precision>]<suffix>.",
)
@calibration_option
@calibration_images_option
@click.option(
    "--force", is_flag=True, help="Replace an existing artifact of the same format (by default it is refused)."
)
@click.option(
    "--shape", default=None, help="HxW input of a fixed-shape format (tflite; default 256x256), e.g. 1080x1920."
)
def export(model, fmt, precision, size, chroma_gain, out_path, calibration, calibration_images, force, shape) -> None:
    """Export the uint8-in/uint8-out colorizer (Lab kernel inside) to a runtime format, parity-checked."""
    from edge_colorizer.inference import load_colorizer, resolve_model_path
    from runtimes.export import check_request, export_artifact
    from runtimes.models import require_checkpoint

    spec = FORMATS[fmt]
    precision = precision or spec.precisions[0]
    try:
        check_request(spec, precision, calibration)
        hw = parse_hw(shape, "--shape", least=16) if shape else None
        if hw is not None and not spec.fixed_shape:
            raise ValueError(
                f"--shape: {fmt} artifacts take images of any size{SIZE_NOTES.get(fmt, '')} "
                "(only fixed-shape formats take one)"
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if calibration and precision not in spec.calibrated:  # said, not refused: the export itself is fine
        say(f"note: --calibration is not used: {fmt} {precision} needs no calibration photos")
        calibration = None
    default_name = f"{Path(model).stem}{'' if precision == 'fp32' else '_' + precision}{spec.suffix}"
    if out_path is not None and (not out_path or (out_path.endswith(("/", os.sep)) and not spec.folder)):
        raise click.UsageError(f"--out {out_path!r}: give the artifact a file name (e.g. {default_name})")
    path = Path(out_path) if out_path else Path(default_name)
    with stop_cleanly():
        try:
            require_checkpoint(model, "export")
            colorizer = load_colorizer(model, size=size, chroma_gain=chroma_gain)
            images = _calibration(calibration, calibration_images)
            with converters_quiet(), working(f"export {model} to {fmt} {precision}, then its parity check"):
                exported = export_artifact(
                    colorizer,
                    fmt,
                    path,
                    precision,
                    images,
                    model_name=model,
                    checkpoint=resolve_model_path(model),
                    force=force,
                    shape=hw,
                )
        except (ValueError, OSError, RuntimeError, ImportError) as exc:
            raise click.ClickException(shown(str(exc))) from None
    limit = spec.tolerances[precision]
    click.echo(
        f"wrote {exported.path} ({fmt}, {precision}); parity vs torch: max {exported.parity.max_abs} "
        f"(limit {limit[0]}), mean {exported.parity.mean_abs:.5f} (limit {limit[1]}) uint8 levels"
    )


def _recorded_model(artifacts) -> str | None:
    """The bundled model every readable artifact records as its source, if they agree on one."""
    from edge_colorizer.inference import BUNDLED
    from runtimes.export import read_artifact_metadata
    from runtimes.models import artifact_format

    recorded = set()
    for path in artifacts:
        fmt = artifact_format(path)
        try:
            recorded.add(read_artifact_metadata(fmt, path).get("model", "") if fmt else "")
        except Exception:  # unreadable: its own row says so
            check_stop()
    recorded.discard("")
    return recorded.pop() if len(recorded) == 1 and next(iter(recorded)) in BUNDLED else None


def _require_calibration(formats, precisions, calibration) -> None:
    """A precision whose export needs calibration photos, asked for without --calibration, is a usage
    error (the row or check asked for would only be skipped). ``formats``: None for torch."""
    needs = sorted({p for f in formats if f is not None for p in precisions if p in f.calibrated})
    if needs and not calibration:
        raise click.UsageError(f"precision {', '.join(needs)} needs calibration images: pass --calibration DIR")


@main.command()
@click.option(
    "--models",
    default=f"gray,{EDGE_MODEL}",
    show_default=True,
    help="Comma-separated: gray, bundled names, checkpoints, eccv16/siggraph17 (speed-only peers).",
)
@click.option(
    "--runtimes",
    "runtimes_",
    default="torch,onnxruntime",
    show_default=True,
    callback=_listed(tuple(RUNTIMES), "runtime"),
    help=f"Comma-separated, from: {', '.join(RUNTIMES)}.",
)
@click.option(
    "--precisions",
    default="fp32",
    show_default=True,
    callback=_listed(PRECISIONS, "precision"),
    help=f"Comma-separated, from: {', '.join(PRECISIONS)}; a runtime without one gets a 'not run' row.",
)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour photos.")
@click.option(
    "--out",
    default="out/bench",
    show_default=True,
    help="Folder for results.md/csv/json and pareto.png.",
    callback=not_empty,
)
@size_option("Network input size for every checkpoint; default: each one's stored size, else 256.")
@click.option("--max-images", type=click.IntRange(0), default=0, show_default=True, help="Use the first N (0 = all).")
@click.option(
    "--max-side",
    type=click.IntRange(16),
    default=1920,
    show_default=True,
    help="Deploy protocol: photos larger than this are downscaled first.",
)
@click.option("--time-size", default="256x256", show_default=True, help="HxW of the timed input.")
@click.option("--throughput-batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=20, show_default=True)
@threads_option()
@calibration_option
@calibration_images_option
@click.option(
    "--fail-above-lpips", type=FiniteRange(0), default=None, help="Exit 1 if a model's LPIPS (paper) exceeds this."
)
def bench(
    models,
    runtimes_,
    precisions,
    data,
    out,
    size,
    max_images,
    max_side,
    time_size,
    throughput_batch,
    repeats,
    threads,
    calibration,
    calibration_images,
    fail_above_lpips,
) -> None:
    """Quality (LPIPS, PSNR, SSIM, ...) vs latency for every model x runtime x precision."""
    from benchmarks.bench import BenchConfig, lpips_gate, markdown, run_bench, write_outputs

    h, w = parse_hw(time_size, "--time-size")
    _require_calibration([RUNTIMES[r] for r in runtimes_], precisions, calibration)
    from edge_colorizer.inference import prepare_output_folder
    from edge_colorizer.io import check_outside, new_folders_dropped_on_failure

    # a run stopped or failed before its results leaves no empty folders behind (what it converted stays)
    with new_folders_dropped_on_failure(out, "artifacts"):
        try:  # before the run, not after its minutes
            if data:  # its charts and tables would become photos of the next run
                check_outside(out, data, "--data")
            prepare_output_folder(out)
        except ValueError as exc:
            raise click.ClickException(shown(str(exc))) from None
        cfg = BenchConfig(
            models=tuple(m for m in models.split(",") if m),
            runtimes=runtimes_,
            precisions=precisions,
            data=data,
            out=out,
            size=size or 0,
            max_images=max_images,
            max_side=max_side,
            time_height=h,
            time_width=w,
            throughput_batch=throughput_batch,
            repeats=repeats,
            threads=threads,
            calibration=calibration or "",
            calibration_images=calibration_images,
        )
        with stop_cleanly(), converters_quiet(), progress_bar() as bar:
            task = bar.add_task("bench", total=None)
            try:
                rows, n_images = run_bench(
                    cfg,
                    log=say,
                    progress=lambda what, done, total: bar.update(task, description=what, completed=done, total=total),
                )
                paths = write_outputs(rows, cfg, n_images)
            except (ValueError, OSError, RuntimeError) as exc:
                raise click.ClickException(shown(str(exc))) from None
    click.echo(markdown(rows, cfg, n_images))
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    if fail_above_lpips is not None:
        failures = lpips_gate(rows, fail_above_lpips)
        for line in failures:
            say(f"LPIPS gate: {line}")
        if failures:
            sys.exit(1)


@main.command()
@click.option(
    "--model",
    default=None,
    help=f"Bundled model name or checkpoint path (the reference); default: {EDGE_MODEL}, or with --artifact "
    "the bundled model the artifacts record as their source.",
    callback=not_empty,
)
@click.option(
    "--formats",
    default=None,
    callback=_listed(tuple(FORMATS), "format"),
    help=f"Comma-separated, from: {', '.join(FORMATS)}; default: {', '.join(LOCAL_FORMATS)} (none with --artifact). "
    "Formats that cannot run here are listed as skipped.",
)
@click.option(
    "--precisions",
    default=None,
    callback=_listed(PRECISIONS, "precision"),
    help="Comma-separated; default: each format's default precision.",
)
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    type=click.Path(),
    help="Check this existing artifact as it is (repeatable; a missing or unreadable one is a failed row); "
    "its format is known by its suffix, its network size and chroma gain by its metadata.",
)
@size_option()
@threads_option()
@calibration_option
@calibration_images_option
def compare(model, formats, precisions, artifacts, size, threads, calibration, calibration_images) -> None:
    """Same images through torch and every runtime here: max/mean uint8 difference, pass/fail per format's
    tolerance. Exit 1 if any artifact fails."""
    from edge_colorizer.inference import load_colorizer, resolve_model_path
    from runtimes.compare import compare_formats
    from runtimes.models import require_checkpoint

    if formats is None:
        formats = () if artifacts else LOCAL_FORMATS
    if precisions:
        if not formats:
            raise click.UsageError("--precisions applies to --formats (an --artifact is checked at its own)")
        orphans = [p for p in precisions if not any(p in FORMATS[f].precisions for f in formats)]
        if orphans:
            raise click.UsageError(f"--precisions {', '.join(orphans)}: none of {', '.join(formats)} has it")
    _require_calibration([FORMATS[f] for f in formats], precisions or (), calibration)
    if not formats:  # only existing artifacts: nothing is exported, and each says its own network size
        given = [name for name, value in (("--size", size), ("--calibration", calibration)) if value is not None]
        if given:  # said, not refused: the check itself is what was asked for
            verb = "apply" if len(given) > 1 else "applies"
            say(f"note: {' and '.join(given)} {verb} to --formats only; an --artifact is checked as it was exported")
        calibration = None
    with stop_cleanly(), no_traceback("compare"):
        if model is None:
            model = _recorded_model(artifacts) or EDGE_MODEL
            if artifacts:
                say(f"reference: {model}")
        try:
            require_checkpoint(model, "compare (torch is the reference)")
            colorizer = load_colorizer(model, size=size)
            with converters_quiet(), working(f"parity of {shown(model)} in each format"):
                rows = compare_formats(
                    colorizer,
                    list(formats),
                    list(precisions) if precisions else None,
                    artifacts=list(artifacts),
                    calibration=_calibration(calibration, calibration_images),
                    model_name=model,
                    checkpoint=resolve_model_path(model),
                    threads=threads,
                    log=say,
                )
        except (ValueError, OSError, RuntimeError) as exc:
            raise click.ClickException(shown(str(exc))) from None
    click.echo(f"parity vs torch fp32 on runtimes.runners.parity_images(), uint8 levels ({shown(model)}):")
    for row in rows:
        click.echo(row.line())
    failed = [r for r in rows if r.status == "fail"]
    if failed:
        say(f"{len(failed)} of {len(rows)} failed")
        sys.exit(1)
