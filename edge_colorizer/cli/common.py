"""What every command shares: the stderr console, the progress bar, options defined once."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)


def say(message: str) -> None:
    """One line on stderr, printed as is (file names may contain brackets)."""
    err.print(message, soft_wrap=True, markup=False, highlight=False)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def size_option(help_text: str = "Network input size (L is resized to it); default: the size stored with the model."):
    return click.option("--size", type=click.IntRange(16, 2048), default=None, help=help_text)


def threads_option(default: int = 0):
    return click.option(
        "--threads", type=click.IntRange(0, 512), default=default, show_default=True, help="CPU threads (0 = default)."
    )


device_option = click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
