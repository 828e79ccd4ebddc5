"""Temporal stability of video colorization: ab smoothing across frames, reset at scene cuts, and a
flicker metric measured on pan-and-zoom clips of colour photos, whose truth is known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import shown
from edge_colorizer.video import DEFAULT_BATCH, torch_colorize


class TemporalSmoother:
    """Exponential average of the network's ab across frames, at the network's resolution, restarted
    at a scene cut, found on L: the histograms of the network's L input of two consecutive frames
    differing by more than ``cut`` (total variation distance, 0..1; a pan or zoom stays near 0.05).

    ``strength`` is the weight of the past: 0 = off, 0.6 = each frame contributes 40 %.
    """

    BINS = 32

    def __init__(self, strength: float = 0.6, cut: float = 0.2):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1), got {strength}")
        if not 0.0 < cut <= 1.0:
            raise ValueError(f"scene-cut threshold must be in (0, 1], got {cut}")
        self.strength, self.cut = strength, cut
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        self._hist: torch.Tensor | None = None
        self._ab: torch.Tensor | None = None

    def __call__(self, l_norm: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        out = []
        for l_frame, ab in zip(l_norm, offsets, strict=True):  # frames in order, one at a time
            hist = torch.histc(l_frame.float(), bins=self.BINS, min=-0.5, max=0.5)
            hist = hist / hist.sum().clamp(min=1.0)
            fresh = self._ab is None or self._ab.shape != ab.shape
            if not fresh and float((hist - self._hist).abs().sum()) / 2 > self.cut:
                fresh, self.cuts = True, self.cuts + 1
            self._ab = ab if fresh else torch.lerp(ab, self._ab, self.strength)
            self._hist = hist
            out.append(self._ab)
        return torch.stack(out)


SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "cat")


def load_photos(spec: str, limit: int = 6, log=lambda message: None) -> list[np.ndarray]:
    """Colour photos for :func:`evaluate_temporal`: a folder of images, or ``skimage`` for the sample
    photos scikit-image ships (no download). A file that cannot serve (unreadable, gray, a broken link)
    gets one ``skip`` line on ``log`` and the next is taken."""
    if spec == "skimage":
        try:
            from skimage import data
        except ImportError:
            raise ImportError("--photos skimage needs scikit-image: pip install scikit-image") from None
        return [getattr(data, name)() for name in SKIMAGE_PHOTOS if hasattr(data, name)][:limit]
    from edge_colorizer.evaluate import read_truth, why_skipped
    from edge_colorizer.io import find_images

    photos = []
    for path in find_images([spec], on_problem=lambda problem: log(f"skip {problem}")):
        try:
            photos.append(read_truth(path, max_side=None))
        except (ValueError, MemoryError) as exc:
            log(f"skip {why_skipped(path, exc)}")
            continue
        if len(photos) == limit:
            break
    if not photos:
        raise ValueError(f"{shown(spec)}: no readable colour photos")
    return photos


def pan_zoom_clip(
    photo: np.ndarray, frames: int = 24, size: tuple[int, int] = (144, 256), zoom: float = 1.6
) -> np.ndarray:
    """A video with a known truth: a window that pans across ``photo`` (uint8 RGB) from left to right
    while zooming in by ``zoom``, each view resampled (bilinear, sub-pixel) to ``size`` (h, w).
    Returns uint8 (frames, h, w, 3)."""
    from PIL import Image

    img = Image.fromarray(photo)
    h, w = size
    ph, pw = photo.shape[:2]
    base_w = min(pw, ph * w / h) * 0.9  # the widest view of the output's aspect ratio
    out = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        vw = base_w / (1.0 + (zoom - 1.0) * t)
        vh = vw * h / w
        cx = vw / 2 + (pw - vw) * (0.15 + 0.7 * t)
        cy = ph / 2
        box = (cx - vw / 2, cy - vh / 2, cx + vw / 2, cy + vh / 2)
        out[i] = np.asarray(img.resize((w, h), Image.BILINEAR, box=box))
    return out


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> uint8 gray (N, H, W, 1) with the same CIELab L (the 8-bit sRGB gray)."""
    from edge_colorizer.colorizer import GrayBaseline

    gray = ColorizerModule(GrayBaseline(), size=16).eval()
    with torch.inference_mode():
        return gray(torch.from_numpy(np.ascontiguousarray(frames)))[..., :1].numpy()


def ab_of(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB (N, H, W, 3) -> CIELab a, b (N, 2, H, W)."""
    from edge_colorizer.lab import rgb_to_lab

    rgb = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return rgb_to_lab(rgb)[:, 1:]


def flicker(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """How a colorized clip's colour changes from frame to frame, against the truth's.

    Returns (flicker, change ratio): flicker is the mean, over consecutive frame pairs and pixels, of
    the length of (delta ab predicted - delta ab true) in Lab units: 0 when the colours move exactly as
    the truth's do. The ratio is the mean |delta ab| predicted over the truth's (1: as much change).
    """
    dp, dt = ab_of(pred).diff(dim=0), ab_of(truth).diff(dim=0)
    excess = float((dp - dt).norm(dim=1).mean())
    return excess, float(dp.norm(dim=1).mean() / dt.norm(dim=1).mean().clamp(min=1e-6))


@dataclass(frozen=True)
class TemporalResult:
    model: str
    smoothing: float  # the smoother's strength (0: none)
    clips: int
    frames: int
    lpips: float | None  # mean per-frame LPIPS (AlexNet) against the truth
    flicker: float  # Lab units, see :func:`flicker`
    change_ratio: float
    cuts_found: int  # scene cuts the smoother detected (the clips' boundaries: clips - 1)


def evaluate_temporal(
    colorizers: dict[str, ColorizerModule],
    photos: list[np.ndarray],
    strengths: tuple[float, ...] = (0.0, 0.6),
    frames: int = 24,
    size: tuple[int, int] = (144, 256),
    cut: float = 0.2,
    lpips: torch.nn.Module | None = None,
    batch: int = DEFAULT_BATCH,
    progress=None,
) -> list[TemporalResult]:
    """Colorize the gray version of one pan-and-zoom clip per photo, played back to back as one video
    (so the smoother must find the cuts), with and without smoothing, and score it against the truth.
    ``progress(done, total)`` is told after each clip."""
    if lpips is not None:
        from edge_colorizer.metrics.lpips import to_lpips_input
    truths = [pan_zoom_clip(p, frames, size) for p in photos]
    grays = [to_gray(t) for t in truths]
    results = []
    total, done = len(colorizers) * len(strengths) * len(photos), 0
    for name, colorizer in colorizers.items():
        for strength in strengths:
            smoother = TemporalSmoother(strength, cut) if strength > 0 else None
            run = torch_colorize(colorizer, smoother)
            scores, dists = [], []
            for gray, truth in zip(grays, truths, strict=True):
                pred = np.concatenate([run(gray[i : i + batch]) for i in range(0, len(gray), batch)])
                scores.append(flicker(pred, truth))
                if lpips is not None:
                    with torch.inference_mode():
                        dists.append(lpips(to_lpips_input(pred), to_lpips_input(truth)))
                done += 1
                if progress:
                    progress(done, total)
            excess, ratio = np.mean(scores, axis=0)
            lp = float(torch.cat(dists).mean()) if dists else None
            cuts = smoother.cuts if smoother else 0
            results.append(TemporalResult(name, strength, len(photos), frames, lp, float(excess), float(ratio), cuts))
    return results
