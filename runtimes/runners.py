"""One runner interface for every runtime (after NVIDIA Polygraphy's BaseRunner).

A runner is a context manager; ``infer(feeds)`` maps input names to numpy arrays and returns
output names to numpy arrays. Each runtime's runner lives in that runtime's module
(``runtimes/onnx.py`` has ``OrtRunner``), which alone imports its SDK. ``compare`` measures one
runner against a reference on the fixed ``parity_images``: the export gate, ``edge-colorizer
compare`` and the benchmark's parity column all use it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.models.encoders import freeze_same_padding

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


def parity_images(seed: int = 0) -> list[np.ndarray]:
    """The fixed inputs of every parity check: RGB and gray, odd sizes, batch 2, a smooth ramp and noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 97 * 131).reshape(97, 131)
    return [
        rng.integers(0, 256, (1, 64, 80, 3), dtype=np.uint8),
        np.repeat(ramp[None, ..., None], 3, axis=3).astype(np.uint8),
        rng.integers(0, 256, (2, 120, 90, 1), dtype=np.uint8),
    ]


def export_ready(colorizer: ColorizerModule) -> ColorizerModule:
    """A copy of ``colorizer`` to export: eval mode, on the CPU, with every shape-dependent padding
    frozen for the network's input size (so the graph holds constants, not shape arithmetic).

    The copy computes exactly what the original computes, for every input size."""
    ready = copy.deepcopy(colorizer).eval().cpu()
    freeze_same_padding(ready.net, torch.zeros(1, 1, ready.size, ready.size))
    return ready


def as_batches(images: list[np.ndarray]) -> list[np.ndarray]:
    """Caller-given images ((H, W), (H, W, 1|3) or (N, H, W, 1|3) uint8) as (N, H, W, C) batches."""
    batches = []
    for i, image in enumerate(images):
        x = np.asarray(image)
        if x.dtype != np.uint8:
            raise TypeError(f"image {i}: expected uint8, got {x.dtype}")
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape:
            raise ValueError(f"image {i}: expected (H, W), (H, W, 1|3) or (N, H, W, 1|3), got {image.shape}")
        batches.append(np.ascontiguousarray(x))
    return batches


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


def conform(x: np.ndarray, meta: TensorMeta) -> list[np.ndarray]:
    """``x`` (N, H, W, C) as the batches a runner with input ``meta`` accepts: a fixed batch size gets
    one image at a time, a fixed height/width gets the image resized (bilinear), a fixed channel
    count gets gray repeated to RGB (or RGB reduced to its first channel)."""
    batch, height, width, channels = meta.shape
    if channels is not None and x.shape[3] != channels:
        x = np.repeat(x, 3, axis=3) if channels == 3 else x[..., :1]
    if (height is not None and x.shape[1] != height) or (width is not None and x.shape[2] != width):
        from PIL import Image

        size = (width or x.shape[2], height or x.shape[1])
        x = np.stack([_resize(img, size, Image) for img in x])
    if batch is not None and x.shape[0] != batch:
        if batch != 1:
            raise ValueError(f"cannot feed batches of {x.shape[0]} to an input of fixed batch {batch}")
        return [x[i : i + 1] for i in range(x.shape[0])]
    return [x]


def _resize(img: np.ndarray, size: tuple[int, int], Image) -> np.ndarray:
    out = np.asarray(Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).resize(size, Image.BILINEAR))
    return out.reshape(size[1], size[0], img.shape[2])


def compare(reference: BaseRunner, other: BaseRunner, inputs: list[np.ndarray] | None = None) -> Parity:
    """Run both (active) runners on every input (default: ``parity_images()``) and measure how far
    ``other`` is from ``reference``. Inputs are first shaped to what ``other`` accepts (``conform``)."""
    max_abs, total, count = 0, 0.0, 0
    meta = other.inputs[0]
    for batch in inputs if inputs is not None else parity_images():
        for x in conform(batch, meta):
            a = reference.infer({INPUT_NAME: x})[OUTPUT_NAME].astype(np.int16)
            b = other.infer({INPUT_NAME: x})[OUTPUT_NAME].astype(np.int16)
            if a.shape != b.shape:
                raise RuntimeError(
                    f"{other.name}: output shape {b.shape} != {reference.name}'s {a.shape} for {x.shape}"
                )
            d = np.abs(a - b)
            max_abs, total, count = max(max_abs, int(d.max())), total + float(d.sum()), count + d.size
    return Parity(max_abs, total / max(count, 1))
