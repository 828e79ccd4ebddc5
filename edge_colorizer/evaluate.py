"""Evaluate colorizers against ground truth on a folder of colour photos (PSNR, colorfulness, LPIPS)
and time them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from edge_colorizer.inference import ArrayColorizer, as_array_colorizer, is_out_of_memory
from edge_colorizer.io import (
    DEFAULT_MAX_PIXELS,
    fit_long_side,
    is_gray,
    one_line,
    read_image,
    scan_inputs,
    shown,
    write_image,
)
from edge_colorizer.metrics import colorfulness, psnr
from edge_colorizer.stopping import check_stop
from edge_colorizer.timing import time_ms

PAPER_SIZE = 256


def paper_view(rgb: np.ndarray) -> np.ndarray:
    """The paper protocol's view of a photo: resized to 256x256 (bicubic) before colorizing and scoring,
    as published colorization tables do."""
    return np.asarray(Image.fromarray(rgb).resize((PAPER_SIZE, PAPER_SIZE), Image.BICUBIC))


@dataclass(frozen=True)
class EvalResult:
    name: str
    images: int
    psnr_db: float  # mean over images
    colorfulness: float  # mean CF of the predictions
    colorfulness_truth: float  # mean CF of the ground truth
    colorfulness_ratio: float  # colorfulness / colorfulness_truth
    lpips: float | None = None  # mean LPIPS distance to the truth, when an LPIPS network was given

    def as_dict(self) -> dict:
        return asdict(self)


# AlexNet's LPIPS pools its input down five times: below 31 px on the short side a feature map is
# empty (measured: 30 px fails, 31 px works)
LPIPS_MIN_SIDE = 31


# the options of the evaluate command that a reason may point to (other callers have none of them)
EVALUATE_OPTIONS = frozenset({"--max-pixels", "--max-side", "--no-lpips"})


def read_truth(
    path: Path,
    max_side: int | None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = 0,
    options: frozenset[str] = frozenset(),
):
    """A photo as ground truth, its long side fitted to ``max_side``; a one-line ValueError naming it
    when it cannot serve: unreadable, gray (R = G = B: no colour to compare with, PSNR infinite), or
    under ``min_side`` px on the short side (LPIPS needs :data:`LPIPS_MIN_SIDE`). A reason names the
    command's ``options`` that would change it (of :data:`EVALUATE_OPTIONS`), and no others."""
    name = shown(path)
    limit_hint = ", --max-pixels raises it" if "--max-pixels" in options else ""
    truth = fit_long_side(read_image(path, max_pixels=max_pixels, limit_hint=limit_hint).rgb, max_side)
    if is_gray(truth):
        raise ValueError(f"{name}: a gray photo (R = G = B), no colour to score a colorizer against")
    if min(truth.shape[:2]) < min_side:
        raise ValueError(
            f"{name}: {truth.shape[1]}x{truth.shape[0]} px{' (after --max-side)' if '--max-side' in options else ''} "
            f"is too small for LPIPS (needs {min_side} px on the short side"
            f"{'; --no-lpips scores it' if '--no-lpips' in options else ''})"
        )
    return truth


def why_skipped(path: Path, exc: Exception) -> str:
    """The one line for a photo that could not be scored (``read_truth``'s reasons name the file)."""
    name = shown(path)
    if is_out_of_memory(exc):
        return f"{name}: out of memory; skipped"
    if isinstance(exc, ValueError) and str(exc).startswith(name + ":"):
        return str(exc)
    return f"{name}: failed ({one_line(exc)})"


def _scored(
    colorizers: dict[str, ArrayColorizer], truth: np.ndarray, lpips: torch.nn.Module | None
) -> dict[str, tuple[float, float, float]]:
    """(PSNR, colorfulness, LPIPS) of each colorizer's prediction from ``truth``'s luminance."""
    if lpips is not None:
        from edge_colorizer.metrics.lpips import to_lpips_input
    rows = {}
    for name, colorize in colorizers.items():
        pred = colorize(truth)
        dist = float("nan")
        if lpips is not None:
            with torch.inference_mode():
                dist = float(lpips(to_lpips_input(pred), to_lpips_input(truth)))
        rows[name] = (psnr(pred, truth), colorfulness(pred), dist)
    return rows


def evaluate(
    colorizers: dict[str, ColorizerModule | ArrayColorizer],
    data: str | Path,
    max_side: int | None = 512,
    include_gray: bool = True,
    progress: Callable[[Path], None] | None = None,
    lpips: torch.nn.Module | None = None,
    on_skip: Callable[[str], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_total: Callable[[int], None] | None = None,
    options: frozenset[str] = frozenset(),
    view: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[EvalResult]:
    """Colorize each photo's luminance with every colorizer and compare with the photo itself.
    (``options``: the caller's options a skip reason may name, see :func:`read_truth`; ``view``: what
    each photo becomes after reading, e.g. :func:`paper_view`, before it is colorized and scored.)

    ``lpips`` is an :class:`edge_colorizer.metrics.lpips.LPIPS` network; without it the LPIPS column
    is left out (None). A photo that cannot be scored is left out of every mean and reported in one
    line to ``on_skip``: unreadable, over ``max_pixels``, out of memory, gray (R = G = B: there is no
    colour to compare with, and PSNR would be infinite), or under 31 px on the short side with LPIPS.
    Raises ValueError (one line) when no photo is left.
    """
    on_skip = on_skip or (lambda message: None)
    size = next((c.size for c in colorizers.values() if isinstance(c, ColorizerModule)), 256)
    runs = {name: as_array_colorizer(c) for name, c in colorizers.items()}
    if include_gray:
        runs = {"gray (ab = 0)": as_array_colorizer(ColorizerModule(GrayBaseline(), size=size).eval()), **runs}
    scores: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    truth_cf: list[float] = []
    scan = scan_inputs([str(data)])
    for problem in scan.problems:
        if problem.kind != "empty":
            on_skip(str(problem))
    if on_total:
        on_total(len(scan.images))
    for found in scan.images:
        path = found.path
        try:
            min_side = LPIPS_MIN_SIDE if lpips is not None else 0
            truth = read_truth(path, max_side, max_pixels, min_side, options)
            if view is not None:
                truth = view(truth)
            rows = _scored(runs, truth, lpips)
            cf = colorfulness(truth)
        except Exception as exc:  # one photo never ends the run
            check_stop()  # a stop that a library swallowed is no failure to go on past
            on_skip(why_skipped(path, exc))
            continue
        finally:
            truth = None
            if progress:
                progress(path)
        truth_cf.append(cf)
        for model, row in rows.items():
            scores[model].append(row)
    if not truth_cf:
        raise ValueError(f"{shown(data)}: no photos to evaluate")
    cf_truth = float(np.mean(truth_cf))  # > 0: gray photos were left out
    results = []
    for name, rows in scores.items():
        p, cf, dist = np.mean(rows, axis=0)
        lp = float(dist) if lpips is not None else None
        results.append(EvalResult(name, len(rows), float(p), float(cf), cf_truth, float(cf / cf_truth), lp))
    return results


def _finite(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def results_json(results: list[EvalResult], timing: dict | None = None, skipped: list[str] | None = None) -> str:
    """The results as strict JSON: a value that is not a finite number is written ``null``, never NaN."""
    quality = [{k: _finite(v) for k, v in r.as_dict().items()} for r in results]
    doc = {"quality": quality, "timing": timing or {}, "skipped": skipped or []}
    return json.dumps(doc, indent=1, allow_nan=False)


def comparison_grid(
    colorizers: dict[str, ColorizerModule | ArrayColorizer],
    data: str | Path,
    path: str | Path,
    n: int = 6,
    height: int = 180,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Path:
    """PNG with one row per photo (the first ``n`` readable ones of ``data``): gray | each colorizer |
    ground truth. Photos that cannot be read are passed over (``evaluate`` reports them)."""
    from PIL import Image

    rows = []
    gray = as_array_colorizer(ColorizerModule(GrayBaseline(), size=256).eval())
    runs = [as_array_colorizer(c) for c in colorizers.values()]
    for found in scan_inputs([str(data)]).images:
        if len(rows) == n:
            break
        try:
            img = Image.fromarray(read_image(found.path, max_pixels=max_pixels).rgb)
        except (ValueError, MemoryError):
            continue
        img = img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)
        truth = np.asarray(img)
        panels = [gray(truth)] + [run(truth) for run in runs] + [truth]
        gap = np.full((height, 4, 3), 255, np.uint8)
        row = [p for panel in panels for p in (panel, gap)][:-1]
        rows.append(np.concatenate(row, axis=1))
    if not rows:
        raise ValueError(f"{shown(data)}: no images for the grid")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return write_image(path, np.concatenate(rows, axis=0))


def time_colorizer(
    colorizer: ColorizerModule | ArrayColorizer, height: int, width: int, repeats: int = 10, warmup: int = 2
) -> dict:
    """Median and p95 wall time (ms) of one uint8 image of the given size through the whole colorizer
    (a torch module on its device, or an exported artifact in its runtime)."""
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    colorize = as_array_colorizer(colorizer)
    cuda = isinstance(colorizer, ColorizerModule) and colorizer.device.type == "cuda"
    timing = time_ms(lambda: colorize(rgb), repeats, warmup, torch.cuda.synchronize if cuda else None)
    return {
        "height": height,
        "width": width,
        "threads": torch.get_num_threads(),
        "p50_ms": timing.p50,
        "p95_ms": timing.p95,
    }
