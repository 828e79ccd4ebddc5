"""What every exporter shares: the artifact is staged beside its destination and renamed into place
(never a partial file or folder), it carries the same metadata, and it passes the parity gate first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge_colorizer import __version__
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import (
    NAME_MAX,
    default_file_mode,
    file_sha256,
    nearest_writable_folder,
    new_folders_dropped_on_failure,
    remove_path,
    shown,
    sweep_target,
    temporary_name,
)
from edge_colorizer.lab import AB_NORM, L_CENT, L_NORM, WHITE_D65
from edge_colorizer.stopping import check_stop
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, Parity, TorchRunner, compare


def artifact_size(path: Path) -> float:
    """Size in MB of an artifact file or folder."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


class ExportError(RuntimeError):
    """An export that cannot be done or did not pass its checks; the message is one line naming the path."""


def artifact_metadata(
    colorizer: ColorizerModule,
    fmt: str,
    precision: str,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The metadata every artifact carries (string values; JSON inside where structured)."""
    return {
        "producer": f"edge-colorizer {__version__}",
        "format": fmt,
        "model": model_name,
        "precision": precision,
        "network_size": str(colorizer.size),
        "input": json.dumps({"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": [1, 3]}),
        "output": json.dumps({"name": OUTPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": 3}),
        "lab": json.dumps({"white": WHITE_D65, "l_cent": L_CENT, "l_norm": L_NORM, "ab_norm": AB_NORM}),
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint and Path(checkpoint).is_file() else "",
        "decoder": json.dumps(decoder_settings(colorizer.net)),
        **extra,
    }


def decoder_settings(net) -> dict[str, float]:
    """How the network turns its output into colour, as exported: the annealed mean's temperature (bin
    heads) and the chroma gain; empty for a network without them."""
    settings = {}
    if getattr(net, "head_type", "") == "bins":
        settings["temperature"] = float(net.temperature)
    if hasattr(net, "chroma_gain"):
        settings["chroma_gain"] = float(net.chroma_gain)
    return settings


def measure_parity(colorizer: ColorizerModule, runner: BaseRunner, images: list[np.ndarray] | None = None) -> Parity:
    """``runner`` (not yet active) against torch fp32 on ``images`` (default: ``parity_images()``)."""
    with TorchRunner(colorizer) as reference, runner:
        return compare(reference, runner, images)


def parity_gate(where: str | Path, parity: Parity, tolerance: tuple[int, float]) -> None:
    if not parity.within(*tolerance):
        raise ExportError(
            f"{where}: parity check failed: max |diff| {parity.max_abs}, mean {parity.mean_abs:.4f} uint8 levels "
            f"(limits: max {tolerance[0]}, mean {tolerance[1]})"
        )


def check_named(out: Path) -> None:
    """A one-line ExportError if ``out`` names no file or folder of its own ('.', '..', '')."""
    if out.name in ("", ".", ".."):
        raise ExportError(f"{shown(out)}: names a folder; give the artifact a name")


def check_destination(out: Path, force: bool, folder: bool = False) -> None:
    """One-line errors, before any work: no file name, a name the runtimes cannot open (not UTF-8), an
    existing artifact without ``force`` (with it, one of the other kind: a folder where the artifact is a
    file or the reverse), a folder that cannot be created (a path under a file) or written (read-only, a
    name too long, a pseudo-filesystem: a temporary of the artifact's name is created there and removed)."""
    name = shown(out)
    check_named(out)
    if len(os.fsencode(out.name)) > NAME_MAX:
        raise ExportError(f"{name}: a name longer than {NAME_MAX} bytes, which no common file system takes")
    try:
        os.fspath(out).encode("utf-8")
    except UnicodeEncodeError:
        raise ExportError(f"{name}: a name that is not UTF-8, which the runtimes cannot open; choose another") from None
    if os.path.lexists(out):
        if not force:
            raise ExportError(f"{name}: already exists; pass --force to overwrite it")
        if os.path.isdir(out) != folder:
            kind = "a folder" if folder else "a file"
            raise ExportError(f"{name}: exists and is not {kind} as the artifact is; refusing to replace it")
    try:
        existing = nearest_writable_folder(out, out.absolute().parent)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    probe = existing / temporary_name(out, suffix=out.suffix)
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise ExportError(f"{name}: cannot write in {shown(existing)} ({exc.strerror or exc})") from None


@contextmanager
def staged(out: str | Path, force: bool = False, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``out`` (a file path, or an empty folder with ``folder=True``) to
    write the artifact into; when the block ends normally it is renamed to ``out`` (replacing an
    existing one only with ``force``), on any exception it is removed. Files get the umask's mode."""
    out = Path(out)
    check_destination(out, force, folder)
    with new_folders_dropped_on_failure(out.parent):  # a failed export leaves no folders it made
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"{out}: cannot create folder {out.parent} ({exc.strerror})") from None
        sweep_target(out)  # what an exporter killed mid-write left (older versions' names too)
        tmp = out.parent / temporary_name(out, suffix=out.suffix)
        try:
            if folder:
                tmp.mkdir()
            yield tmp
            check_stop()  # a stop that a converter swallowed: the artifact is not put in place
            if not os.path.lexists(tmp):
                raise ExportError(f"{out}: the exporter wrote nothing")
            try:
                _commit(tmp, out)
            except OSError as exc:
                raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None
        finally:
            if os.path.lexists(tmp):  # gone already after a successful rename
                remove_path(tmp)


def _commit(tmp: Path, out: Path) -> None:
    file_mode = default_file_mode()
    dir_mode = file_mode | (file_mode & 0o444) >> 2  # the umask's mode: r bits give x bits for folders
    for path in [tmp, *tmp.rglob("*")] if tmp.is_dir() else [tmp]:
        os.chmod(path, dir_mode if path.is_dir() else file_mode)
    if tmp.is_dir() and os.path.lexists(out):
        old = out.parent / temporary_name(out, kind="old")
        os.replace(out, old)  # a folder cannot be renamed over another: move the old one aside first
        os.replace(tmp, out)
        remove_path(old)
    else:
        os.replace(tmp, out)
