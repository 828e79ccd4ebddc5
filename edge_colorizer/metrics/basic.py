"""Pixel and colour metrics on uint8 RGB images: MSE, AE, PSNR, SSIM, CIEDE2000 and colorfulness.

MSE and AE are in uint8 units (0..255); PSNR uses peak 255; SSIM follows Wang et al. (2004):
an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the RGB channels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edge_colorizer.lab import rgb_to_lab


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {target.shape}")
    return pred.astype(np.float64), target.astype(np.float64)


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    p, t = _pair(pred, target)
    return float(np.mean((p - t) ** 2))


def ae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error (the seed's AE)."""
    p, t = _pair(pred, target)
    return float(np.mean(np.abs(p - t)))


def psnr(pred: np.ndarray, target: np.ndarray, max_value: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 (H, W, 3) images; inf when identical."""
    err = mse(pred, target)
    return float("inf") if err == 0 else float(10.0 * np.log10(max_value**2 / err))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM over channels, Gaussian 11x11 window (sigma 1.5), valid region only (as scikit-image)."""
    p, t = _pair(pred, target)
    if p.ndim == 2:
        p, t = p[..., None], t[..., None]
    x = torch.from_numpy(p).permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    y = torch.from_numpy(t).permute(2, 0, 1)[:, None]
    g = _gaussian_window()
    if min(x.shape[-2:]) < g.numel():
        raise ValueError(f"images must be at least {g.numel()}x{g.numel()} for SSIM, got {p.shape[:2]}")

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def _lab(rgb: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(rgb.astype(np.float64) / 255.0).permute(2, 0, 1)
    return rgb_to_lab(t).permute(1, 2, 0).numpy()


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma et al. 2005) between Lab arrays (..., 3), kL = kC = kH = 1."""
    L1, a1, b1 = np.moveaxis(lab1.astype(np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(lab2.astype(np.float64), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dL = L2 - L1
    dC = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    L_bar = (L1 + L2) / 2
    c_bar_p = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(
        c1p * c2p == 0,
        h_sum,
        np.where(np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)),
    )
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(c_bar_p**7 / (c_bar_p**7 + 25.0**7))
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / np.sqrt(20 + (L_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar_p
    s_h = 1 + 0.015 * c_bar_p * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dL / s_l) ** 2 + (dC / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dC / s_c) * (dH / s_h))


def delta_e2000(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean CIEDE2000 between two uint8 RGB images, through the package's Lab kernel."""
    _pair(pred, target)
    return float(ciede2000(_lab(pred), _lab(target)).mean())


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colorfulness M of a uint8 (H, W, 3) image (0 for gray)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
