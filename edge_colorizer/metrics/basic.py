"""PSNR and Hasler–Süsstrunk colorfulness on uint8 RGB images."""

from __future__ import annotations

import numpy as np


def psnr(pred: np.ndarray, target: np.ndarray, max_value: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 (H, W, 3) images; inf when identical."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {target.shape}")
    mse = np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(max_value**2 / mse))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colorfulness M of a uint8 (H, W, 3) image (0 for gray)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
