"""Commands over videos: video (a file or a live camera) and evaluate-video (temporal stability)."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import (
    FiniteRange,
    device_option,
    no_traceback,
    not_empty,
    progress_bar,
    say,
    size_option,
    stop_cleanly,
)
from edge_colorizer.inference import EDGE_MODEL
from edge_colorizer.io import shown


def _runtime_names() -> tuple[str, ...]:
    try:
        from runtimes.formats import RUNTIMES

        return tuple(RUNTIMES)
    except ImportError:  # an install without the runtimes package: torch only
        return ("torch",)


def runtime_colorize(model: str, runtime: str, size: int | None, stack: contextlib.ExitStack, folder: Path):
    """A batch colorize callable running ``model`` on ``runtime`` (any runtime of the formats table).

    ``model`` is a bundled name or checkpoint (exported into ``folder`` first) or, for a runtime
    other than torch, an artifact of that runtime's format.
    """
    import numpy as np

    from edge_colorizer.inference import load_colorizer, resolve_model_path
    from runtimes.formats import format_for_runtime, load_format_module
    from runtimes.models import artifact_format
    from runtimes.runners import INPUT_NAME, OUTPUT_NAME

    fmt = format_for_runtime(runtime)
    module = load_format_module(fmt)
    artifact = resolve_model_path(model)
    if artifact_format(artifact) is not fmt:
        say(f"exporting {model} to {fmt.name} for the {runtime} runtime")
        artifact = module.export(load_colorizer(model, size=size), folder / f"model{fmt.suffix}").path
    runner = stack.enter_context(module.Runner(artifact, name=runtime))
    fixed = [m.shape for m in runner.inputs if m.name == INPUT_NAME and None not in m.shape]

    def run(frames):
        if not fixed:
            return runner.infer({INPUT_NAME: frames})[OUTPUT_NAME]
        _, h, w, _ = fixed[0]  # a fixed-shape artifact: one frame at a time, of its one size
        if (h, w) != frames.shape[1:3]:
            raise click.ClickException(
                f"the {runtime} artifact takes {w}x{h} frames only; the video is {frames.shape[2]}x{frames.shape[1]}"
            )
        return np.concatenate([runner.infer({INPUT_NAME: f[None]})[OUTPUT_NAME] for f in frames])

    return run


@main.command("video")
@click.argument("source", required=False, type=click.Path(dir_okay=False), callback=not_empty)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Output video (.mp4, .mov, .mkv, .avi).", callback=not_empty
)
@click.option("--camera", type=int, default=None, help="Read live camera N (OpenCV) instead of a file.")
@click.option(
    "--model",
    default=EDGE_MODEL,
    show_default=True,
    help="Bundled model, checkpoint, or an artifact.",
    callback=not_empty,
)
@click.option(
    "--runtime",
    type=click.Choice(_runtime_names()),
    default=None,
    help="Default: torch for a checkpoint, the artifact's own runtime for an exported model (student-int8).",
)
@size_option()
@device_option
@click.option("--batch", type=click.IntRange(1, 256), default=4, show_default=True, help="Frames per inference.")
@click.option(
    "--smooth",
    type=FiniteRange(0.0, 1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Temporal smoothing of ab: weight of the past frames (0: off; torch runtime).",
)
@click.option(
    "--scene-cut",
    type=FiniteRange(0.0, 1.0, min_open=True),
    default=0.2,
    show_default=True,
    help="L-histogram distance that restarts the smoothing.",
)
@click.option("--show", is_flag=True, help="Camera: show the colorized stream in a window.")
@click.option("--frames", "max_frames", type=click.IntRange(0), default=0, help="Camera: stop after N frames.")
def video_cmd(source, out, camera, model, runtime, size, device, batch, smooth, scene_cut, show, max_frames) -> None:
    """Colorize a video file (frame rate, size, rotation and audio kept) or a live camera."""
    from edge_colorizer.temporal import TemporalSmoother
    from edge_colorizer.video import VideoError, torch_colorize

    if source is None and camera is None:
        raise click.UsageError("give either a video file or --camera N")
    if source is not None and camera is not None:
        raise click.UsageError("give either a video file or --camera N, not both")
    if camera is None and not out:
        raise click.UsageError("a video file needs --out")
    if camera is None and (show or max_frames):
        raise click.UsageError("--show and --frames apply to --camera only")
    if camera is not None and not (out or show):
        raise click.UsageError("--camera needs --out, --show or both")
    from edge_colorizer.inference import resolve_model_path
    from runtimes.models import artifact_format

    try:
        own = artifact_format(resolve_model_path(model))
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(shown(str(exc))) from None
    if own is not None and runtime not in (None, own.runtime):
        raise click.UsageError(f"--model {model} is a {own.name} artifact: it runs on {own.runtime}, not {runtime}")
    runtime = runtime or (own.runtime if own else "torch")
    if runtime != "torch" and (smooth or device != "cpu"):
        raise click.UsageError("--smooth and --device apply to the torch runtime only")
    with stop_cleanly(), contextlib.ExitStack() as stack:  # a signal removes the unfinished output
        try:
            smoother = TemporalSmoother(smooth, scene_cut) if smooth else None
            if runtime == "torch":
                from edge_colorizer.inference import load_colorizer

                colorize = torch_colorize(load_colorizer(model, size=size, device=device), smoother, batch)
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                colorize = runtime_colorize(model, runtime, size, stack, folder)
            if camera is not None:
                _camera(camera, colorize, out, show, max_frames)
                return
            report = _colorize_file(source, out, colorize, batch)
        except (VideoError, ValueError, FileNotFoundError, KeyError, ImportError, RuntimeError) as exc:
            raise click.ClickException(shown(str(exc))) from None
    cuts = f", {smoother.cuts} scene cut(s)" if smoother else ""
    if report.partial:
        say(f"error: {source}: {report.problem}; the {report.frames} frames before it are in {report.output}")
        click.echo(f"wrote {report.output} (partial: {report.frames} frames, {report.fps:.1f} frames/s{cuts})")
        sys.exit(1)
    click.echo(
        f"wrote {report.output} ({report.frames} frames in {report.seconds:.1f} s, {report.fps:.1f} frames/s{cuts})"
    )


def _colorize_file(source: str, out: str, colorize, batch: int):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from edge_colorizer.cli.common import live_progress
    from edge_colorizer.video import colorize_video, probe_frames

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]}"))
    with live_progress(*columns, TimeElapsedColumn()) as progress:
        task = progress.add_task("video", total=probe_frames(source), fps="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[task]
            if t.elapsed:
                progress.update(task, fps=f"{t.completed / t.elapsed:.1f} frames/s")

        return colorize_video(source, out, colorize, batch=batch, progress=advance)


def _camera(index: int, colorize, out: str | None, show: bool, max_frames: int) -> None:
    try:
        import cv2
    except ImportError:
        raise click.ClickException("--camera needs OpenCV: pip install opencv-python") from None
    from edge_colorizer.video import VideoSink, run_camera

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise click.ClickException(f"camera {index}: cannot be opened")
    sink = VideoSink(out, capture.get(cv2.CAP_PROP_FPS) or 30.0) if out else None

    def deliver(rgb) -> bool:
        if sink:
            sink(rgb)
        if show:
            cv2.imshow(f"edge-colorizer camera {index}", rgb[..., ::-1])
            return cv2.waitKey(1) & 0xFF != ord("q")
        return True

    kept = False
    try:
        report = run_camera(capture, colorize, deliver, max_frames, on_fps=lambda fps: say(f"{fps:.1f} frames/s"))
        kept = True
    except KeyboardInterrupt:
        kept = True  # Ctrl-C is how a live stream ends
        report = None
    finally:
        capture.release()
        written = sink.close(keep=kept) if sink else None
    frames = f"{report.frames} frames, {report.fps:.1f} frames/s" if report else "stopped"
    click.echo(f"camera {index}: {frames}" + (f"; wrote {written}" if written else ""))


@main.command("evaluate-video")
@click.option(
    "--photos",
    default="skimage",
    show_default=True,
    help="Folder of colour photos, or 'skimage' for scikit-image's sample photos.",
)
@click.option(
    "--model", "models", multiple=True, default=[EDGE_MODEL, "teacher"], show_default=True, callback=not_empty
)
@click.option(
    "--smooth",
    "strengths",
    type=FiniteRange(0.0, 1.0, max_open=True),
    multiple=True,
    default=[0.0, 0.6],
    show_default=True,
    help="Smoothing strengths to compare (0: none).",
)
@click.option("--frames", type=click.IntRange(2), default=24, show_default=True, help="Frames per clip.")
@click.option("--max-photos", type=click.IntRange(1), default=6, show_default=True)
@click.option("--lpips/--no-lpips", "with_lpips", default=True, show_default=True)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.", callback=not_empty
)
def evaluate_video_cmd(photos, models, strengths, frames, max_photos, with_lpips, json_path) -> None:
    """Temporal stability on pan-and-zoom clips of colour photos: per-frame LPIPS and flicker vs truth."""
    from dataclasses import asdict

    from edge_colorizer.inference import load_colorizer
    from edge_colorizer.temporal import evaluate_temporal, load_photos

    with stop_cleanly(), no_traceback("evaluate-video"):
        try:
            if json_path:  # before the run, not after it
                from edge_colorizer.io import check_writable_file

                check_writable_file(json_path, (".json",))
            pictures = load_photos(photos, max_photos, log=say)
            from runtimes.models import require_checkpoint

            for m in models:  # the smoothing study runs torch checkpoints
                require_checkpoint(m, "evaluate-video")
            colorizers = {m: load_colorizer(m) for m in models}
            lpips = None
            if with_lpips:
                from edge_colorizer.metrics.lpips import LPIPS

                lpips = LPIPS("alex")
        except (ValueError, FileNotFoundError, ImportError) as exc:
            raise click.ClickException(shown(str(exc))) from None
        with progress_bar() as bar:
            task = bar.add_task("evaluate-video: clips", total=None)
            results = evaluate_temporal(
                colorizers,
                pictures,
                tuple(strengths),
                frames=frames,
                lpips=lpips,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        played = f"{len(pictures)} clips of {frames} frames, played back to back"
        click.echo(f"{played} (flicker: Lab units, lower is steadier)")
        click.echo("\n| model | smoothing | LPIPS | flicker | change ratio | cuts found |\n|---|---|---|---|---|---|")
        for r in results:
            lp = f"{r.lpips:.4f}" if r.lpips is not None else "–"
            cuts = f"{r.cuts_found}/{r.clips - 1}" if r.smoothing else "–"
            click.echo(f"| {r.model} | {r.smoothing:.2f} | {lp} | {r.flicker:.3f} | {r.change_ratio:.2f} | {cuts} |")
        if json_path:
            from edge_colorizer.io import write_bytes_atomic

            write_bytes_atomic(json_path, json.dumps([asdict(r) for r in results], indent=1).encode())
