"""The ``edge-colorizer`` command line: thin commands over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edge_colorizer import __version__
from edge_colorizer.colorizer import DEFAULT_SIZE

err = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@click.group()
@click.version_option(__version__, prog_name="edge-colorizer")
def main() -> None:
    """Train, compress, export and benchmark automatic image colorizers."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--model", default="student", show_default=True, help="Bundled model name or checkpoint path.")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size (L is resized to it).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--side-by-side", is_flag=True, help="Write a gray|colour PNG grid instead of the colour image.")
def colorize(paths, out_dir, model, size, device, side_by_side) -> None:
    """Colorize images (files, folders, globs) into OUT."""
    from edge_colorizer.inference import colorize_files, find_images, load_colorizer

    try:
        total = len(find_images(paths))
        colorizer = load_colorizer(model, size=size, device=device)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("colorize", total=total)
        report = colorize_files(
            paths,
            out_dir,
            colorizer,
            side_by_side=side_by_side,
            on_error=lambda m: err.print(f"error: {m}", soft_wrap=True, markup=False, highlight=False),
            progress=lambda _: progress.advance(task),
        )
    click.echo(
        f"wrote {len(report.written)} image(s) to {Path(out_dir).resolve()} "
        f"in {report.seconds:.1f} s; {len(report.failed)} failed"
    )
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour images.")
@click.option("--out", default="runs/student", show_default=True, help="Run folder (checkpoints, logs, samples).")
@click.option("--recipe", "recipe_name", default="student", show_default=True, help="Named training recipe.")
@click.option("--steps", type=int, default=None, help="Override the recipe's number of steps.")
@click.option("--batch-size", type=int, default=None)
@click.option("--size", type=int, default=None, help="Training crop size.")
@click.option("--lr", type=float, default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from OUT/train_state.pt.")
def train(data, out, recipe_name, steps, batch_size, size, lr, threads, resume) -> None:
    """Train a colorizer on a folder of colour images."""
    from training.config import recipe
    from training.train import train as run_training

    try:
        cfg = recipe(
            recipe_name, data=data, out=out, steps=steps, batch_size=batch_size, size=size, lr=lr, threads=threads
        )
        run_training(cfg, resume=resume, log=err.print)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "models", multiple=True, default=["student"], show_default=True)
@click.option("--size", default=DEFAULT_SIZE, show_default=True)
@click.option("--max-side", default=512, show_default=True, help="Resize photos so the long side is at most this.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def evaluate_cmd(data, models, size, max_side, json_path) -> None:
    """PSNR and colorfulness of models vs ground truth and the gray baseline."""
    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.inference import load_colorizer

    try:
        colorizers = {m: load_colorizer(m, size=size) for m in models}
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("evaluate", total=None)
        results = evaluate(colorizers, data, max_side=max_side, progress=lambda _: progress.advance(task))
    click.echo("| model | images | PSNR dB | CF | CF truth | CF ratio |\n|---|---|---|---|---|---|")
    for r in results:
        click.echo(
            f"| {r.name} | {r.images} | {r.psnr_db:.2f} | {r.colorfulness:.1f} | {r.colorfulness_truth:.1f} "
            f"| {r.colorfulness_ratio:.2f} |"
        )
    if json_path:
        Path(json_path).write_text(json.dumps([r.as_dict() for r in results], indent=1))


@main.command("models")
def models_cmd() -> None:
    """List the registered architectures and the bundled models."""
    from edge_colorizer.inference import BUNDLED
    from edge_colorizer.models import describe_model, list_models

    for name in list_models():
        click.echo(f"{name:12s} {describe_model(name)}")
    for name, path in BUNDLED.items():
        click.echo(f"bundled: {name:8s} {path.name}{'' if path.exists() else ' (missing)'}")


@main.group()
def data() -> None:
    """Offline training and evaluation photo pools."""


@data.command("prepare")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (train/, eval/).")
@click.option("--cache", type=click.Path(file_okay=False), default=None, help="Where .debs are downloaded/unpacked.")
def data_prepare(out, cache) -> None:
    """Build the pools from Debian packages (apt-get download + dpkg -x; nothing is installed)."""
    from edge_colorizer.data.sources import prepare

    try:
        prepare(out, cache=cache, log=err.print)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
