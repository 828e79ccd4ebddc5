"""Models as users name them — a bundled name, a checkpoint, or an exported artifact — opened with what
runs them: a checkpoint with torch, an artifact (``student-int8``, ``model_int8.onnx``, an OpenVINO
folder) with the runtime of its format, so ``colorize``, ``evaluate``, ``video`` and ``bench`` take any.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.inference import UnfitInput, load_colorizer, resolve_model_path
from edge_colorizer.io import one_line
from edge_colorizer.stopping import check_stop
from runtimes.formats import FORMATS, Format, load_format_module
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner


def artifact_format(path: str | Path) -> Format | None:
    """The format of an exported artifact by its name (None for a checkpoint or anything else)."""
    name = Path(path).name
    for fmt in FORMATS.values():
        if name.endswith(fmt.suffix) and name != fmt.suffix:
            return fmt
    return None


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


def require_checkpoint(model: str, what: str) -> None:
    """Refuse, in one line, an exported artifact where a checkpoint is needed (to export, compress, ...)."""
    fmt = artifact_format(resolve_model_path(model))
    if fmt is not None:
        raise ValueError(
            f"{model} is an exported {fmt.name} model; {what} needs its parent checkpoint (a .pt), "
            "named on the artifact's card"
        )


class ArtifactColorizer:
    """An exported artifact, active in its runtime, as a colorizer of uint8 (H, W, 3) arrays."""

    def __init__(self, path: Path, fmt: Format, threads: int = 0):
        self.path, self.format = path, fmt
        self.runner: BaseRunner = load_format_module(fmt).Runner(path, threads=threads, name=path.name)
        try:
            self.runner.__enter__()
        except ImportError:  # the runtime is missing: its own one-line message
            raise
        except Exception as exc:  # a damaged or foreign file: the runtimes raise their own types
            check_stop()  # a stop that a library swallowed is no failure to go on past
            raise ValueError(
                f"{path}: not a valid {fmt.name} model for {fmt.runtime} ({one_line(exc, limit=160)})"
            ) from None
        _, self.height, self.width, _ = self.runner.inputs[0].shape

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if (self.height, self.width) != (None, None) and rgb.shape[:2] != (self.height, self.width):
            h, w = rgb.shape[:2]
            raise UnfitInput(
                f"{h}x{w} px (HxW), and {self.path.name} takes {self.height}x{self.width} only (a fixed-shape "
                f"{self.format.name} export; export one with --shape {h}x{w})"
            )
        return self.runner.infer({INPUT_NAME: np.ascontiguousarray(rgb)[None]})[OUTPUT_NAME][0]

    def close(self) -> None:
        self.runner.__exit__(None, None, None)


def open_colorizer(
    model: str, size: int | None = None, device: str = "cpu", threads: int = 0, chroma_gain: float | None = None
) -> ColorizerModule | ArtifactColorizer:
    """A torch ``ColorizerModule`` for a checkpoint or bundled checkpoint, an :class:`ArtifactColorizer`
    for an exported artifact (its network size, chroma gain and device are fixed inside it:
    ``size``/``chroma_gain``/``device`` are refused rather than ignored)."""
    path = resolve_model_path(model)
    fmt = artifact_format(path)
    if fmt is None:
        return load_colorizer(model, size=size, device=device, chroma_gain=chroma_gain)
    if size is not None:
        raise ValueError(f"{model}: an exported {fmt.name} artifact has its network size inside; --size does not apply")
    if chroma_gain is not None:
        raise ValueError(
            f"{model}: an exported {fmt.name} artifact has its chroma gain inside; --chroma-gain does not apply"
        )
    if device != "cpu":
        raise ValueError(
            f"{model}: an exported {fmt.name} artifact runs on its runtime's CPU device here; --device does not apply"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    why = unavailable(fmt)
    if why:
        raise ValueError(f"{model}: cannot run here: {why}")
    return ArtifactColorizer(path, fmt, threads)
