"""The one sRGB <-> CIELab kernel (D65), in pure torch, used by training, inference and every export.

Works on ``(*, 3, H, W)`` float tensors with RGB in [0, 1]; traceable and exportable to ONNX
(opset 17). The matrices and white point are scikit-image's, so results agree with
``skimage.color.rgb2lab`` / ``lab2rgb``. Network-side normalisation constants live here too.
"""

from __future__ import annotations

import torch

# Normalisation of the network's input (L) and output (ab), as richzhang/colorization BaseColor.
L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0

# sRGB (linear) -> XYZ, D65, and the D65 reference white (scikit-image's values).
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
WHITE_D65 = (0.95047, 1.0, 1.08883)

_DELTA = 6.0 / 29.0
_EPS = _DELTA**3  # 0.008856...
_KAPPA_INV = 1.0 / (3.0 * _DELTA**2)  # slope of the linear part of f(t)


def _rgb_from_xyz() -> tuple[tuple[float, ...], ...]:
    inv = torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64))
    return tuple(tuple(float(v) for v in row) for row in inv)


RGB_FROM_XYZ = _rgb_from_xyz()
# the same matrices with the reference white folded in (XYZ / white), so the kernel's constants stay
# Python floats and tracing records them as scalars
_XYZN_FROM_RGB = tuple(tuple(v / w for v in row) for row, w in zip(XYZ_FROM_RGB, WHITE_D65, strict=True))
_RGB_FROM_XYZN = tuple(tuple(v * w for v, w in zip(row, WHITE_D65, strict=True)) for row in RGB_FROM_XYZ)


def _apply_matrix(m: tuple[tuple[float, ...], ...], x: torch.Tensor) -> torch.Tensor:
    """Mix the channels of x (*, 3, H, W) by the constant 3x3 matrix m (elementwise ops only, for portability)."""
    c0, c1, c2 = x.unbind(-3)
    return torch.stack([r[0] * c0 + r[1] * c1 + r[2] * c2 for r in m], dim=-3)


def _check(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELab (L in [0, 100], a/b roughly in [-110, 110]), shape ``(*, 3, H, W)``."""
    _check(rgb, "rgb")
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    t = _apply_matrix(_XYZN_FROM_RGB, linear)
    f = torch.where(t > _EPS, t.clamp(min=_EPS).pow(1.0 / 3.0), t * _KAPPA_INV + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-3)
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((L, a, b), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELab -> sRGB clipped to [0, 1], shape ``(*, 3, H, W)``."""
    _check(lab, "lab")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)  # as scikit-image: negative Z is clipped
    f = torch.stack((fx, fy, fz), dim=-3)
    t = torch.where(f > _DELTA, f.pow(3.0), (f - 4.0 / 29.0) / _KAPPA_INV)
    linear = _apply_matrix(_RGB_FROM_XYZN, t)
    linear = linear.clamp(min=0.0)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1.0 / 2.4) - 0.055, linear * 12.92)
    return rgb.clamp(0.0, 1.0)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> the network's input range [-0.5, 0.5]."""
    return (L - L_CENT) / L_NORM


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return l_norm * L_NORM + L_CENT


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units -> the network's output range (about [-1, 1])."""
    return ab / AB_NORM


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_NORM
