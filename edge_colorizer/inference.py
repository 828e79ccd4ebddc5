"""Loading a colorizer by name or checkpoint, and colorizing files in a batch.

A batch never stops at a bad file: each input that cannot be colorized gets one line (its name, the
reason), the others are written. Outputs appear whole or not at all, and never replace an input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.checkpoint import load_model
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule
from edge_colorizer.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    NAME_MAX,
    FoundImage,
    image_size,
    one_line,
    os_reason,
    read_image,
    scan_inputs,
    shown,
    sweep_temporaries,
    write_image,
)
from edge_colorizer.lab import lab_to_rgb, rgb_to_lab
from edge_colorizer.stopping import check_stop

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Bundled models, by name: the file inside the package. Checkpoints (.pt) run in torch; an exported
# artifact (student-int8, an ONNX QDQ graph) runs in its format's runtime (runtimes.models.open_colorizer).
BUNDLED = {
    "student": WEIGHTS_DIR / "unet_s_student.pt",
    "teacher": WEIGHTS_DIR / "teacher_gan.pt",
    "student-pruned": WEIGHTS_DIR / "unet_s_pruned.pt",  # the student, channels pruned by half, fine-tuned
    "student-distilled": WEIGHTS_DIR / "unet_s_distilled.pt",  # student-pruned, distilled from the teacher
    "student-int8": WEIGHTS_DIR / "unet_s_distilled_int8.onnx",  # student-distilled, INT8 network (ONNX Runtime)
}
# `colorize` of still images: the best-quality bundled model that stays interactive on a laptop CPU
# (budget: under half a second of model time per photo on 2 cores; README "The bundled models" has the
# measurements). Video, evaluate-video, export, compare, evaluate and bench default to the edge model:
# the last link of the compression chain that runs without an extra (benchmarks/RESULTS.md: no worse
# than the student on LPIPS and colourfulness, and faster).
DEFAULT_MODEL = "teacher"
EDGE_MODEL = "student-distilled"


def resolve_model_path(model: str) -> Path:
    if model in BUNDLED:
        path = BUNDLED[model]
        if not path.exists():
            raise FileNotFoundError(f"bundled model {model!r} is missing from the install ({path})")
        return path
    path = Path(model)
    if path.suffix in (".pt", ".pth") or path.exists():
        return path
    if path.suffix or len(path.parts) > 1:  # a file's path, not a name
        raise FileNotFoundError(f"{model}: not found")
    raise ValueError(f"{model!r} is neither a bundled model ({', '.join(BUNDLED)}) nor a checkpoint file")


def load_colorizer(
    model: str = EDGE_MODEL, size: int | None = None, device: str = "cpu", chroma_gain: float | None = None
) -> ColorizerModule:
    """A ready ``ColorizerModule`` for a bundled model name or a checkpoint path.

    ``size`` is the network input size; by default the one stored with the weights (else 256).
    ``chroma_gain`` replaces the factor the model multiplies its decoded colour by (default: the one
    stored with it, 1 if none): above 1 more colourful, below 1 less."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    net = load_model(resolve_model_path(model))
    if chroma_gain is not None:
        if not hasattr(net, "set_chroma_gain"):
            raise ValueError(f"{model}: {type(net).__name__} has no chroma gain; --chroma-gain does not apply")
        net.set_chroma_gain(chroma_gain)
    return ColorizerModule(net, size=size or getattr(net, "input_size", DEFAULT_SIZE)).eval().to(device)


def colorize_array(colorizer: ColorizerModule, rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> colorized uint8 (H, W, 3)."""
    device = colorizer.device
    with torch.inference_mode():
        out = colorizer(torch.from_numpy(np.require(rgb, requirements=["C", "W"])).to(device)[None])
    return out[0].cpu().numpy()


ArrayColorizer = Callable[[np.ndarray], np.ndarray]  # uint8 (H, W, 3) -> uint8 (H, W, 3)


def as_array_colorizer(colorizer: ColorizerModule | ArrayColorizer) -> ArrayColorizer:
    """A ``ColorizerModule`` (or any torch module with its signature) or a plain function on arrays,
    as a function on one uint8 (H, W, 3) array."""
    if isinstance(colorizer, torch.nn.Module):
        return lambda rgb: colorize_array(colorizer, rgb)
    if callable(colorizer):
        return colorizer
    raise TypeError(f"a colorizer must be a torch module or a callable on uint8 arrays, got {type(colorizer).__name__}")


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (input, the one-line message)
    swept: list[Path] = field(default_factory=list)  # unfinished temporaries of killed runs, removed
    seconds: float = 0.0


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


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


def prepare_output_folder(out_dir: str | Path) -> Path:
    """Create ``out_dir``; a one-line ValueError if it cannot hold outputs (checked once, not per file)."""
    out_dir = Path(out_dir)
    if not os.path.isdir(out_dir):
        if os.path.lexists(out_dir):
            raise ValueError(f"{shown(out_dir)}: the output folder is a file")
        if out_dir.suffix.lower() in IMAGE_SUFFIXES:
            raise ValueError(
                f"{shown(out_dir)}: the output must be a folder, and this is named like an image file; "
                "name a folder (outputs keep their input's name)"
            )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{shown(out_dir)}: cannot create the output folder ({os_reason(exc)})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValueError(f"{shown(out_dir)}: cannot write in the output folder (permission denied)")
    return out_dir


def plan_outputs(
    found: list[FoundImage], out_dir: Path, side_by_side: bool = False
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Where each input goes; refused (with the reason): an output that would replace an input, an
    output that another input of the same name already claims, a name longer than the file system's."""
    inputs = {os.path.realpath(f.path) for f in found}
    claimed: dict[str, Path] = {}
    jobs, refused = [], []
    for item in found:
        src = item.path
        dst = output_path(src, out_dir, item.root, side_by_side)
        key = os.path.realpath(dst)
        if key in inputs:
            refused.append((src, f"{shown(src)}: output {shown(dst)} would overwrite an input; choose another --out"))
        elif key in claimed:
            refused.append(
                (
                    src,
                    f"{shown(src)}: output {shown(dst)} is already written from {shown(claimed[key])} (same name); "
                    "colorize one of them into another --out",
                )
            )
        elif len(os.fsencode(dst.name)) > NAME_MAX:
            refused.append((src, f"{shown(src)}: output name {shown(dst.name)} would be longer than {NAME_MAX} bytes"))
        else:
            claimed[key] = src
            jobs.append(Job(src, dst))
    return jobs, refused


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError (Python, numpy, Pillow), torch's CPU allocation failure (a RuntimeError) or CUDA's."""
    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc))


class UnfitInput(ValueError):
    """An input this colorizer cannot take (a fixed-shape artifact and another size); the message is the
    reason, the file is named before it."""


def _failure(src: Path, dst: Path, exc: Exception) -> str:
    """The one line that reports ``exc`` for ``src``."""
    name = shown(src)
    if is_out_of_memory(exc):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # what the failed image held goes back before the next one
        size = image_size(src)
        where = f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.1f} megapixels" if size else "while decoding"
        return f"{name}: out of memory ({where}); skipped"
    if isinstance(exc, ValueError) and str(exc).startswith(name + ":"):
        return str(exc)
    if isinstance(exc, UnfitInput):
        return f"{name}: {exc}"
    if isinstance(exc, OSError):
        return f"{name}: cannot write {shown(dst)} ({os_reason(exc)})"
    return f"{name}: failed ({one_line(exc)})"


def colorize_files(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | Path,
    colorizer: ColorizerModule | ArrayColorizer,
    side_by_side: bool = False,
    on_error: Callable[[str], None] = print,
    progress: Callable[[Path], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_total: Callable[[int], None] | None = None,
) -> BatchReport:
    """Colorize every input image into ``out_dir``; each bad input is reported through ``on_error`` in
    one line and skipped, never fatal. ``colorizer`` is a ``ColorizerModule`` or any function from a
    uint8 (H, W, 3) array to one of the same shape. Raises ValueError (one line) only when ``out_dir``
    cannot be used at all.

    Folders are searched recursively, skipping hidden entries and ``out_dir`` itself; temporaries that a
    killed run left in ``out_dir`` are removed first. ``on_total`` receives the number of images found.
    """
    t0 = time.perf_counter()
    out_dir = prepare_output_folder(out_dir)
    report = BatchReport(swept=sweep_temporaries(out_dir))
    run = as_array_colorizer(colorizer)
    scan = scan_inputs(inputs, exclude=[out_dir])
    for problem in scan.problems:
        report.failed.append((Path(problem.path), str(problem)))
        on_error(str(problem))
    jobs, refused = plan_outputs(scan.images, out_dir, side_by_side)
    if on_total:
        on_total(len(scan.images))
    for src, message in refused:
        report.failed.append((src, message))
        on_error(message)
        if progress:
            progress(src)
    for job in jobs:
        try:
            image = read_image(job.src, max_pixels=max_pixels)
            rgb = run(image.rgb)
            if side_by_side:
                write_image(job.dst, side_by_side_grid(image.rgb, rgb), dpi=image.dpi, sweep=False)
            else:
                write_image(job.dst, rgb, image.alpha, image.icc_profile, image.dpi, sweep=False)
            report.written.append(job.dst)
        except Exception as exc:  # one bad file never ends the batch: it is reported and skipped
            check_stop()  # a stop that a library swallowed is no failure to go on past
            message = _failure(job.src, job.dst, exc)
            report.failed.append((job.src, message))
            on_error(message)
        finally:
            image = rgb = None  # this image's arrays are freed before the next one is decoded
        if progress:
            progress(job.src)
    report.seconds = time.perf_counter() - t0
    return report
