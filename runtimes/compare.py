"""Cross-runtime parity (after Polygraphy's Comparator): the same images through torch and through each
exported artifact, max/mean uint8 difference, pass/fail against the format table's tolerance.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import file_sha256, one_line, shown
from edge_colorizer.stopping import check_stop
from runtimes.artifacts import measure_parity
from runtimes.export import export_artifact, read_artifact_metadata
from runtimes.formats import FORMATS, Format, load_format_module
from runtimes.models import artifact_format, unavailable
from runtimes.runners import Parity


@dataclass(frozen=True)
class ParityRow:
    format: str
    precision: str
    runtime: str
    artifact: str
    status: str  # "pass", "fail" or "skip"
    parity: Parity | None = None
    tolerance: tuple[int, float] | None = None
    reason: str = ""

    def line(self) -> str:
        measured = f"max {self.parity.max_abs:3d}  mean {self.parity.mean_abs:.4f}" if self.parity else " " * 20
        limit = f"(limit {self.tolerance[0]} / {self.tolerance[1]})" if self.tolerance else ""
        return (
            f"{self.status.upper():4s}  {self.format:9s} {self.precision:12s} {self.runtime:12s} {measured}  {limit}"
            f"{'  ' + self.reason if self.reason else ''}"
        ).rstrip()


def at_size(colorizer: ColorizerModule, size: str | int | None) -> ColorizerModule:
    """``colorizer`` at the network size an artifact was exported at (its metadata's), so the reference
    computes what the artifact computes; itself when the size is unknown or the same."""
    size = int(size or 0)
    return colorizer.with_forms(size=size) if size and size != colorizer.size else colorizer


def like_artifact(colorizer: ColorizerModule, meta: dict[str, str]) -> ColorizerModule:
    """``colorizer`` as an artifact's metadata says it was exported: its network size and its chroma gain
    (``export --chroma-gain``); a copy of the network where the gain differs, never ``colorizer`` changed.
    A one-line ValueError for settings the colorizer refuses."""
    try:
        reference = at_size(colorizer, meta.get("network_size"))
    except (ValueError, TypeError) as exc:  # not a number, not a multiple of 8, ...
        raise ValueError(f"network size in its metadata: {one_line(exc)}") from None
    try:
        gain = json.loads(meta.get("decoder") or "{}").get("chroma_gain")
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"decoder settings in its metadata are not a JSON object: {meta.get('decoder')!r}") from None
    if gain is None or not hasattr(reference.net, "set_chroma_gain") or gain == reference.net.chroma_gain:
        return reference
    net = copy.deepcopy(reference.net)
    try:
        net.set_chroma_gain(gain)
    except (ValueError, TypeError):
        raise ValueError(f"chroma gain in its metadata: {gain!r} is not a number > 0") from None
    module = ColorizerModule(net, size=reference.size, resize=reference.resize, upsample=reference.upsample)
    return module.to(reference.device).train(reference.training)


def check_artifact(
    colorizer: ColorizerModule,
    fmt: Format,
    path: str | Path,
    precision: str,
    threads: int = 0,
    images: list[np.ndarray] | None = None,
) -> ParityRow:
    """Run one artifact against torch; a runner that fails to load or to infer is a failed row."""
    tolerance = fmt.tolerances[precision]
    try:
        runner = load_format_module(fmt).Runner(path, threads=threads, name=f"{fmt.name}/{precision}")
        parity = measure_parity(colorizer, runner, images)
    except Exception as exc:  # any runtime's load or inference error is this artifact's failure
        check_stop()  # a stop that a library swallowed is no failure to go on past
        return ParityRow(fmt.name, precision, fmt.runtime, str(path), "fail", None, tolerance, one_line(exc))
    status = "pass" if parity.within(*tolerance) else "fail"
    return ParityRow(fmt.name, precision, fmt.runtime, str(path), status, parity, tolerance)


def _check_given(
    colorizer: ColorizerModule, path, checkpoint, model_name: str, threads: int, log: Callable[[str], None]
) -> ParityRow:
    """The row of one existing artifact; its reason column starts with its path (several may be given)."""

    def row(fmt: str, precision: str, runtime: str, status: str, *notes: str, **measured) -> ParityRow:
        reason = "; ".join(n for n in (shown(path), *notes) if n)
        return ParityRow(fmt, precision, runtime, str(path), status, reason=reason, **measured)

    fmt = artifact_format(path)
    if not os.path.lexists(path):
        return row(fmt.name if fmt else "?", "?", fmt.runtime if fmt else "?", "fail", "no such file or folder")
    if fmt is None:
        suffixes = ", ".join(f.suffix for f in FORMATS.values())
        return row("?", "?", "?", "fail", f"unknown artifact type; suffixes: {suffixes}")
    why = unavailable(fmt)
    try:  # Core ML's metadata reads on Linux too, where its model cannot run
        meta = read_artifact_metadata(fmt, path)
    except Exception as exc:  # an unreadable artifact fails, it is not skipped
        check_stop()  # a stop that a library swallowed is no failure to go on past
        if why:
            return row(fmt.name, "?", fmt.runtime, "skip", why)
        return row(fmt.name, "?", fmt.runtime, "fail", one_line(exc))
    precision = meta.get("precision", fmt.precisions[0])
    if why:
        return row(fmt.name, precision, fmt.runtime, "skip", why)
    if precision not in fmt.tolerances:  # a newer version's precision, or a damaged card
        return row(fmt.name, precision, fmt.runtime, "fail", f"precision {precision!r} unknown to this version")
    try:
        reference = like_artifact(colorizer, meta)
    except ValueError as exc:  # a network size or gain the colorizer refuses
        return row(fmt.name, precision, fmt.runtime, "fail", str(exc))
    log(f"compare {shown(path)} ({fmt.name} {precision})")
    checked = check_artifact(reference, fmt, path, precision, threads)
    source, other = meta.get("checkpoint_sha256"), ""
    if source and checkpoint and Path(checkpoint).is_file() and source != file_sha256(checkpoint):
        other = f"exported from another checkpoint ({meta.get('model') or source[:12]}), not {model_name or checkpoint}"
    return row(
        fmt.name,
        precision,
        fmt.runtime,
        checked.status,
        checked.reason,
        other,
        parity=checked.parity,
        tolerance=checked.tolerance,
    )


def compare_formats(
    colorizer: ColorizerModule,
    formats: list[str],
    precisions: list[str] | None = None,
    artifacts: list[str | Path] = (),
    calibration: list[np.ndarray] | None = None,
    workdir: str | Path | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    threads: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> list[ParityRow]:
    """Export ``colorizer`` to every format x precision (default: the format's default precision) that runs
    here and compare each with torch; ``artifacts`` are existing files checked as they are (their format
    from the suffix, their precision from their metadata). Formats that cannot run here are skipped rows."""
    rows: list[ParityRow] = [_check_given(colorizer, path, checkpoint, model_name, threads, log) for path in artifacts]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in formats:
            fmt = FORMATS[name]
            wanted = precisions or [fmt.precisions[0]]
            why = unavailable(fmt)
            for precision in wanted:
                if precision not in fmt.precisions:
                    reason = f"{fmt.name} has no {precision} (it has {', '.join(fmt.precisions)})"
                    rows.append(ParityRow(fmt.name, precision, fmt.runtime, "", "skip", reason=reason))
                    continue
                if why:
                    rows.append(ParityRow(fmt.name, precision, fmt.runtime, "", "skip", reason=why))
                    continue
                if precision in fmt.calibrated and not calibration:
                    rows.append(ParityRow(fmt.name, precision, fmt.runtime, "", "skip", reason="needs --calibration"))
                    continue
                out = Path(tmp) / f"model_{precision}{fmt.suffix}"
                log(f"export {fmt.name} {precision}")
                try:
                    export_artifact(colorizer, name, out, precision, calibration, model_name, checkpoint)
                except Exception as exc:  # an export that fails (its own parity gate included) is a failed row
                    check_stop()  # a stop that a library swallowed is no failure to go on past
                    rows.append(
                        ParityRow(
                            fmt.name,
                            precision,
                            fmt.runtime,
                            "",
                            "fail",
                            None,
                            fmt.tolerances[precision],
                            one_line(exc),
                        )
                    )
                    continue
                log(f"compare {fmt.name} {precision}")
                rows.append(check_artifact(colorizer, fmt, out, precision, threads))
    return rows
