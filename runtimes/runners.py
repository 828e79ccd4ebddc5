"""One runner interface for every runtime (after NVIDIA Polygraphy's BaseRunner).

A runner is a context manager; ``infer(feeds)`` maps input names to numpy arrays and returns
output names to numpy arrays. Each runtime's runner lives in that runtime's module
(``runtimes/onnx.py`` has ``OrtRunner``), which alone imports its SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule

INPUT_NAME = "images"
OUTPUT_NAME = "rgb"


@dataclass(frozen=True)
class TensorMeta:
    """An input or output of a runner: name, numpy dtype name, shape with None for a dynamic axis."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if d is None)


# what every artifact takes and gives unless its format fixes a shape: uint8 NHWC, 1 or 3 channels in
DYNAMIC_INPUT = TensorMeta(INPUT_NAME, "uint8", (None, None, None, None))


class BaseRunner:
    runtime = "base"

    def __init__(self, name: str):
        self.name = name
        self.active = False

    def activate(self) -> None:  # load the model / create the session
        pass

    def deactivate(self) -> None:
        pass

    def synchronize(self) -> None:  # wait for queued device work, for honest timings
        pass

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def threads(self) -> int | None:
        return None

    @property
    def inputs(self) -> list[TensorMeta]:
        """What ``infer`` accepts; fixed-shape runtimes give their one shape."""
        return [DYNAMIC_INPUT]

    def __enter__(self):
        self.activate()
        self.active = True
        return self

    def __exit__(self, *exc):
        self.deactivate()
        self.active = False
        return False


class TorchRunner(BaseRunner):
    runtime = "torch"

    def __init__(self, colorizer: ColorizerModule, device: str = "cpu", name: str = "torch"):
        super().__init__(name)
        self.colorizer = colorizer.eval()
        self.device = torch.device(device)

    def activate(self) -> None:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch runner on cuda asked for, but no CUDA device is visible")
        self.colorizer.to(self.device)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            x = np.require(feeds[INPUT_NAME], requirements=["C", "W"])  # torch wants writable memory
            out = self.colorizer(torch.from_numpy(x).to(self.device))
        return {OUTPUT_NAME: out.cpu().numpy()}


@dataclass(frozen=True)
class Exported:
    """What ``export`` of every format returns."""

    path: Path
    parity: Parity
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parity:
    """Difference of a runner's uint8 outputs from a reference runner's, in uint8 levels."""

    max_abs: int
    mean_abs: float

    def within(self, max_abs: int, mean_abs: float) -> bool:
        return self.max_abs <= max_abs and self.mean_abs <= mean_abs


def compare(reference: BaseRunner, other: BaseRunner, inputs: list[np.ndarray]) -> Parity:
    """Run both (active) runners on every input and measure how far ``other`` is from ``reference``."""
    max_abs, total, count = 0, 0.0, 0
    for x in inputs:
        a = reference.infer({INPUT_NAME: x})[OUTPUT_NAME].astype(np.int16)
        b = other.infer({INPUT_NAME: x})[OUTPUT_NAME].astype(np.int16)
        if a.shape != b.shape:
            raise RuntimeError(f"{other.name}: output shape {b.shape} != {reference.name}'s {a.shape} for {x.shape}")
        d = np.abs(a - b)
        max_abs, total, count = max(max_abs, int(d.max())), total + float(d.sum()), count + d.size
    return Parity(max_abs, total / max(count, 1))
