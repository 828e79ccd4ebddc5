"""Loading a colorizer by name or checkpoint, and colorizing files in a batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.checkpoint import load_model
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule
from edge_colorizer.io import find_images, read_image, write_image
from edge_colorizer.lab import lab_to_rgb, rgb_to_lab

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Bundled models, by name: the checkpoint file inside the package.
BUNDLED = {"student": WEIGHTS_DIR / "unet_s_student.pt", "teacher": WEIGHTS_DIR / "teacher_gan.pt"}
DEFAULT_MODEL = "student"


def resolve_model_path(model: str) -> Path:
    if model in BUNDLED:
        path = BUNDLED[model]
        if not path.exists():
            raise FileNotFoundError(f"bundled model {model!r} is missing from the install ({path})")
        return path
    path = Path(model)
    if path.suffix in (".pt", ".pth") or path.exists():
        return path
    raise ValueError(f"{model!r} is neither a bundled model ({', '.join(BUNDLED)}) nor a checkpoint file")


def load_colorizer(model: str = DEFAULT_MODEL, size: int | None = None, device: str = "cpu") -> ColorizerModule:
    """A ready ``ColorizerModule`` for a bundled model name or a checkpoint path.

    ``size`` is the network input size; by default the one stored with the weights (else 256)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    net = load_model(resolve_model_path(model))
    return ColorizerModule(net, size=size or getattr(net, "input_size", DEFAULT_SIZE)).eval().to(device)


def colorize_array(colorizer: ColorizerModule, rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> colorized uint8 (H, W, 3)."""
    device = colorizer.device
    with torch.inference_mode():
        out = colorizer(torch.from_numpy(np.require(rgb, requirements=["C", "W"])).to(device)[None])
    return out[0].cpu().numpy()


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def output_path(src: Path, out_dir: Path, root: Path | None, side_by_side: bool) -> Path:
    rel = src.relative_to(root) if root is not None else Path(src.name)
    suffix = ".png" if side_by_side else src.suffix.lower()
    name = rel.with_suffix("").as_posix() + ("_side_by_side" if side_by_side else "") + suffix
    return out_dir / name


def side_by_side_grid(rgb_in: np.ndarray, rgb_out: np.ndarray) -> np.ndarray:
    """gray | colour, side by side; the gray panel is the input's L* with ab = 0 (what the network saw)."""
    lab = rgb_to_lab(torch.from_numpy(rgb_in.astype(np.float32) / 255.0).permute(2, 0, 1))
    lab[1:] = 0.0
    gray3 = (lab_to_rgb(lab) * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    gap = np.full((rgb_in.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate((gray3, gap, rgb_out), axis=1)


def colorize_files(
    inputs: Iterable[str],
    out_dir: str | Path,
    colorizer: ColorizerModule,
    side_by_side: bool = False,
    on_error: Callable[[str], None] = print,
    progress: Callable[[Path], None] | None = None,
) -> BatchReport:
    """Colorize every input image into ``out_dir``; bad files are reported and skipped, never fatal."""
    out_dir = Path(out_dir)
    inputs = list(inputs)
    paths = find_images(inputs)
    input_set = {p.resolve() for p in paths}
    # keep folder structure for inputs found under one folder argument
    roots = [Path(i) for i in inputs if Path(i).is_dir()]
    report = BatchReport()
    planned: set[Path] = set()
    t0 = time.perf_counter()
    for src in paths:
        root = next((r for r in roots if src.is_relative_to(r)), None)
        dst = output_path(src, out_dir, root, side_by_side)
        try:
            if dst.resolve() in input_set:
                raise ValueError(f"{src}: output {dst} would overwrite an input; choose another --out")
            if dst.resolve() in planned:
                raise ValueError(f"{src}: output {dst} is already written by another input of the same name")
            planned.add(dst.resolve())
            image = read_image(src)
            rgb = colorize_array(colorizer, image.rgb)
            if side_by_side:
                write_image(dst, side_by_side_grid(image.rgb, rgb))
            else:
                write_image(dst, rgb, alpha=image.alpha)
            report.written.append(dst)
        except (ValueError, OSError) as exc:
            message = str(exc) if str(exc).startswith(str(src)) else f"{src}: {exc}"
            report.failed.append((src, message))
            on_error(message)
        if progress:
            progress(src)
    report.seconds = time.perf_counter() - t0
    return report
