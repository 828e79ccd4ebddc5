"""Evaluate colorizers against ground truth on a folder of colour photos (PSNR, colorfulness, LPIPS)
and time them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from edge_colorizer.inference import colorize_array
from edge_colorizer.io import find_images, read_image
from edge_colorizer.metrics import colorfulness, psnr


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


def _fit(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(rgb.shape[:2]) <= max_side:
        return rgb
    from PIL import Image

    img = Image.fromarray(rgb)
    scale = max_side / max(img.size)
    return np.asarray(img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS))


def evaluate(
    colorizers: dict[str, ColorizerModule],
    data: str | Path,
    max_side: int | None = 512,
    include_gray: bool = True,
    progress: Callable[[Path], None] | None = None,
    lpips: torch.nn.Module | None = None,
) -> list[EvalResult]:
    """Colorize each photo's luminance with every colorizer and compare with the photo itself.

    ``lpips`` is an :class:`edge_colorizer.metrics.lpips.LPIPS` network; without it the LPIPS column
    is left out (None).
    """
    if lpips is not None:
        from edge_colorizer.metrics.lpips import to_lpips_input
    if include_gray:
        size = next(iter(colorizers.values())).size if colorizers else 256
        colorizers = {"gray (ab = 0)": ColorizerModule(GrayBaseline(), size=size).eval(), **colorizers}
    scores: dict[str, list[tuple[float, float, float]]] = {name: [] for name in colorizers}
    truth_cf: list[float] = []
    for path in find_images([str(data)]):
        truth = _fit(read_image(path).rgb, max_side)
        truth_cf.append(colorfulness(truth))
        for name, colorizer in colorizers.items():
            pred = colorize_array(colorizer, truth)
            dist = float("nan")
            if lpips is not None:
                with torch.inference_mode():
                    dist = float(lpips(to_lpips_input(pred), to_lpips_input(truth)))
            scores[name].append((psnr(pred, truth), colorfulness(pred), dist))
        if progress:
            progress(path)
    if not truth_cf:
        raise ValueError(f"{data}: no images to evaluate")
    cf_truth = float(np.mean(truth_cf))
    results = []
    for name, rows in scores.items():
        p, cf, dist = np.mean(rows, axis=0)
        lp = float(dist) if lpips is not None else None
        results.append(EvalResult(name, len(rows), float(p), float(cf), cf_truth, float(cf / cf_truth), lp))
    return results


def comparison_grid(
    colorizers: dict[str, ColorizerModule], data: str | Path, path: str | Path, n: int = 6, height: int = 180
) -> Path:
    """PNG with one row per photo (the first ``n`` of ``data``): gray | each colorizer | ground truth."""
    from PIL import Image

    rows = []
    gray = ColorizerModule(GrayBaseline(), size=256).eval()
    for image_path in find_images([str(data)])[:n]:
        img = Image.fromarray(read_image(image_path).rgb)
        img = img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)
        truth = np.asarray(img)
        panels = [colorize_array(gray, truth)] + [colorize_array(c, truth) for c in colorizers.values()] + [truth]
        gap = np.full((height, 4, 3), 255, np.uint8)
        row = [p for panel in panels for p in (panel, gap)][:-1]
        rows.append(np.concatenate(row, axis=1))
    if not rows:
        raise ValueError(f"{data}: no images for the grid")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    from edge_colorizer.io import write_image

    return write_image(path, np.concatenate(rows, axis=0))


def time_colorizer(colorizer: ColorizerModule, height: int, width: int, repeats: int = 10, warmup: int = 2) -> dict:
    """Median and p95 wall time (ms) of one uint8 image of the given size through the whole module."""
    device = colorizer.device
    x = torch.randint(0, 256, (1, height, width, 3), dtype=torch.uint8, device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            colorizer(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "height": height,
        "width": width,
        "threads": torch.get_num_threads(),
        "p50_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
    }
