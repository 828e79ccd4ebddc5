"""Cross-runtime parity (after Polygraphy's Comparator): the same images through torch and through each
exported artifact, max/mean uint8 difference, pass/fail against the format table's tolerance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import one_line
from runtimes.artifacts import measure_parity
from runtimes.export import export_artifact, read_artifact_metadata
from runtimes.formats import FORMATS, Format, load_format_module
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


def unavailable(fmt: Format) -> str:
    """Why ``fmt``'s artifacts cannot run on this machine ('' when they can)."""
    if not fmt.runs_on_linux:
        return f"{fmt.name} predicts only on macOS"
    if fmt.needs_gpu and not torch.cuda.is_available():
        return f"{fmt.name} needs a CUDA GPU"
    try:
        load_format_module(fmt)
    except ImportError as exc:
        return str(exc)
    return ""


def format_of_artifact(path: str | Path) -> Format:
    name = Path(path).name
    for fmt in FORMATS.values():
        if name.endswith(fmt.suffix):
            return fmt
    raise ValueError(f"{path}: unknown artifact type; suffixes: {', '.join(f.suffix for f in FORMATS.values())}")


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
        return ParityRow(fmt.name, precision, fmt.runtime, str(path), "fail", None, tolerance, one_line(exc))
    status = "pass" if parity.within(*tolerance) else "fail"
    return ParityRow(fmt.name, precision, fmt.runtime, str(path), status, parity, tolerance)


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
    rows: list[ParityRow] = []
    for path in artifacts:
        fmt = format_of_artifact(path)
        why = unavailable(fmt)
        try:
            precision = read_artifact_metadata(fmt, path).get("precision", fmt.precisions[0]) if not why else "?"
        except Exception as exc:  # an unreadable artifact fails, it is not skipped
            rows.append(ParityRow(fmt.name, "?", fmt.runtime, str(path), "fail", reason=one_line(exc)))
            continue
        if why:
            rows.append(ParityRow(fmt.name, precision, fmt.runtime, str(path), "skip", reason=why))
            continue
        log(f"compare {path} ({fmt.name} {precision})")
        rows.append(check_artifact(colorizer, fmt, path, precision, threads))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in formats:
            fmt = FORMATS[name]
            wanted = [p for p in precisions if p in fmt.precisions] if precisions else [fmt.precisions[0]]
            why = unavailable(fmt)
            for precision in wanted:
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
