"""The ``edge-colorizer`` command line: thin commands over the library, one module per area.

``images`` (colorize, evaluate, models), ``training`` (train, data, compress) and ``runtime`` (export,
bench, compare) each register their commands on :func:`main`.
"""

from __future__ import annotations

import sys

import click

from edge_colorizer import __version__


@click.group()
@click.version_option(__version__, prog_name="edge-colorizer")
def main() -> None:
    """Train, compress, export and benchmark automatic image colorizers."""


try:  # torch and the rest load here (a second or more): a Ctrl-C meanwhile is one line, as later
    from edge_colorizer.cli import images, runtime, training, video  # noqa: E402, F401  (command registration)
except KeyboardInterrupt:
    sys.stderr.write("stopped by SIGINT\n")
    raise SystemExit(130) from None

__all__ = ["main"]
