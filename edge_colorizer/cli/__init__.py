"""The ``edge-colorizer`` command line: thin commands over the library, one module per area.

``images`` (colorize, evaluate, models), ``training`` (train, data, compress) and ``runtime`` (export,
bench, compare) each register their commands on :func:`main`.
"""

from __future__ import annotations

import click

from edge_colorizer import __version__


@click.group()
@click.version_option(__version__, prog_name="edge-colorizer")
def main() -> None:
    """Train, compress, export and benchmark automatic image colorizers."""


from edge_colorizer.cli import images, runtime, training, video  # noqa: E402, F401  (command registration)

__all__ = ["main"]
