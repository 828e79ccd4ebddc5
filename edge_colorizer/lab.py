"""The one sRGB <-> CIELab kernel (D65), in pure torch, used by training, inference and every export.

Works on ``(*, 3, H, W)`` float tensors with RGB in [0, 1]; traceable and exportable to ONNX
(opset 17). The matrices and white point are scikit-image's, so results agree with
``skimage.color.rgb2lab`` / ``lab2rgb``. Network-side normalisation constants live here too, and so
do the tables of the uint8 fast path (:func:`uint8_luminance`, :func:`lab_offsets_to_uint8`), which
are built from the same functions and differ from the float kernel only by their bin sizes.
"""

from __future__ import annotations

import math

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


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer function, undone: encoded values in [0, 1] -> linear light."""
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear light >= 0 -> sRGB-encoded values."""
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1.0 / 2.4) - 0.055, linear * 12.92)


def lab_f(t: torch.Tensor) -> torch.Tensor:
    """CIELab's compression of XYZ / white: a cube root with a linear toe below (6/29)^3."""
    return torch.where(t > _EPS, t.clamp(min=_EPS).pow(1.0 / 3.0), t * _KAPPA_INV + 4.0 / 29.0)


def lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > _DELTA, f.pow(3.0), (f - 4.0 / 29.0) / _KAPPA_INV)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELab (L in [0, 100], a/b roughly in [-110, 110]), shape ``(*, 3, H, W)``."""
    _check(rgb, "rgb")
    linear = srgb_to_linear(rgb.clamp(0.0, 1.0))
    fx, fy, fz = lab_f(_apply_matrix(_XYZN_FROM_RGB, linear)).unbind(-3)
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
    linear = _apply_matrix(_RGB_FROM_XYZN, lab_f_inverse(torch.stack((fx, fy, fz), dim=-3)))
    return linear_to_srgb(linear.clamp(min=0.0)).clamp(0.0, 1.0)


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


# --- The uint8 fast path -------------------------------------------------------------------------
# A uint8 pixel's linear light is one of 256 values per channel, so Y is a sum of three table entries;
# f(Y) (hence L) is looked up in a table of Y_BINS bins of Y (L within 0.014 of the float kernel), and
# the 8-bit sRGB code of the output in a table of RGB_BINS bins of linear light (within one level of
# rounding the float result, where a rounding threshold falls inside a bin). The tables stay in the
# L1 and L2 caches, and the scaled values stay finite in fp16.
Y_BINS = 1 << 15
RGB_BINS = 1 << 15
# the Y row of the white-normalised matrix: L depends on linear RGB through Y / Yn only
_Y_FROM_RGB = _XYZN_FROM_RGB[1]
# fz = fy - b / 200 is clipped at 0 (as scikit-image); fx is not
_F_MIN = (-float("inf"), 0.0)


def luminance_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """The two float32 tables of :func:`uint8_luminance`.

    ``y_table`` (4 * 256): entry ``256 * c + v`` is ``Y_BINS`` times the Y contributed by value ``v`` of
    channel c (R, G, B), and entry ``768 + v`` is the Y of the gray pixel (v, v, v), summed by the same
    float32 reduction as three looked-up channels, so a gray image and its RGB copy give identical bits.
    ``f_table`` (Y_BINS + 1): f(Y) at the centre of each Y bin (bin k: k <= Y * Y_BINS < k + 1).
    """
    linear = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    per_channel = torch.stack([linear * (w * Y_BINS) for w in _Y_FROM_RGB]).float()
    y_table = torch.cat((per_channel.flatten(), per_channel.sum(0)))
    centres = ((torch.arange(Y_BINS + 1, dtype=torch.float64) + 0.5) / Y_BINS).clamp(max=1.0)
    return y_table, lab_f(centres).float()


def srgb_code_table() -> torch.Tensor:
    """int32 (RGB_BINS + 1): the rounded 8-bit sRGB code of each linear-light bin's centre (the last: 1 and above)."""
    centres = ((torch.arange(RGB_BINS + 1, dtype=torch.float64) + 0.5) / RGB_BINS).clamp(max=1.0)
    return (linear_to_srgb(centres) * 255.0).round().to(torch.int32)


def uint8_luminance(
    images: torch.Tensor, y_table: torch.Tensor, f_table: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, H, W, C), C in {1, 3} (1: gray) -> ``Y * Y_BINS`` and fy = f(Y), both (N, H, W).

    L = 116 fy - 16. Nothing else is computed per pixel: no float RGB, no a or b.
    """
    index = images.to(torch.int32)  # first, as TensorRT takes uint8 only into a Cast
    channels = index.shape[-1]
    # RGB reads table blocks 0, 1, 2; gray reads block 3 (shape arithmetic, not a branch, so that a
    # traced or exported graph keeps the channel count dynamic)
    offsets = torch.arange(channels, dtype=torch.int32, device=images.device) * 256 + 384 * (3 - channels)
    index = index.permute(0, 3, 1, 2) + offsets[:, None, None]  # planar: ONNX Runtime broadcasts this fast
    y = y_table.index_select(0, index.reshape(-1)).reshape(index.shape).sum(-3)
    return y, f_table.index_select(0, y.to(torch.int32).reshape(-1)).reshape(y.shape)


def lab_offsets_to_uint8(
    fy: torch.Tensor, y: torch.Tensor, f_offsets: torch.Tensor, srgb_table: torch.Tensor
) -> torch.Tensor:
    """Lab -> uint8 sRGB (N, H, W, 3), channels last, in a few passes over the pixels.

    ``fy`` and ``y`` (N, H, W) come from :func:`uint8_luminance`; ``f_offsets`` (N, 2, H, W) are
    fx - fy = a / 500 and fz - fy = -b / 200. Same as ``lab_to_rgb`` and rounding to 8 bits, to one
    level. :class:`BandKernel` computes the same in place, band by band.
    """
    f_min = torch.tensor(_F_MIN, dtype=fy.dtype, device=fy.device)[:, None, None]
    f = (f_offsets + fy.unsqueeze(-3)).clamp_(min=f_min)
    # lab_f_inverse without a branch: with c = max(f, delta), c^2 (3 f - 2 c) is f^3 above delta and,
    # below it, the tangent at delta, which is exactly the linear toe
    c = f.clamp(min=_DELTA)
    xz = (f * 3.0 - c * 2.0) * c * c
    # two selects, not unbind: OpenVINO's CPU plugin runs unbind's Split as a reference kernel, a pass of
    # its own (25 of 170 ms of a 1080p frame on one thread); a select it reads in place
    x, z = xz[..., 0, :, :], xz[..., 1, :, :]
    # linear RGB in units of 1 / RGB_BINS, one plane at a time, Y from the table
    # plain products and sums (no add(alpha=)): litert-torch converts these
    planes = [x * k[0] + y * k[1] + z * k[2] for k in _LINEAR_FROM_XYZ_BINS]
    index = torch.stack(planes, dim=-3).clamp_(0.0, float(RGB_BINS)).to(torch.int32)  # truncation: the bin
    codes = srgb_table.index_select(0, index.reshape(-1)).reshape(index.shape)
    # the cast last, as TensorRT gives uint8 only out of a Cast
    return codes.permute(0, 2, 3, 1).to(torch.uint8, memory_format=torch.contiguous_format)


# the coefficients of x, y * Y_BINS and z in linear RGB * RGB_BINS
_LINEAR_FROM_XYZ_BINS = tuple((r[0] * RGB_BINS, r[1] * RGB_BINS / Y_BINS, r[2] * RGB_BINS) for r in _RGB_FROM_XYZN)


class BandKernel:
    """:func:`uint8_luminance` and :func:`lab_offsets_to_uint8` for eager torch, in place on bands of
    rows small enough to stay in cache, with scratch buffers reused from band to band.

    Each step is the same arithmetic as the functional form; the linear-RGB mix uses fused multiply-adds
    here, so a rounding threshold can fall differently, by one level, on a few pixels in a million.
    """

    def __init__(self, y_table: torch.Tensor, f_table: torch.Tensor, srgb_table: torch.Tensor):
        self.y_table, self.f_table, self.srgb_table = y_table, f_table, srgb_table.to(torch.uint8)
        self.channel_tables = y_table[:768].view(3, 256).unbind(0)
        # a gray pixel's fy in one lookup: the two tables composed
        self.gray_f_table = f_table.index_select(0, y_table[768:].to(torch.int32))
        self.scratch: dict[str, torch.Tensor] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Scratch tensor ``name`` of this shape, reused from call to call (grown when too small)."""
        size = math.prod(shape)
        buf = self.scratch.get(name)
        # a buffer made under inference_mode cannot be written outside it (and the module may be called both ways)
        stale = buf is not None and buf.is_inference() != torch.is_inference_mode_enabled()
        if buf is None or stale or buf.numel() < size or buf.dtype != dtype:
            buf = self.scratch[name] = torch.empty(size, dtype=dtype, device=self.y_table.device)
        return buf[:size].view(shape)

    def luminance(self, images: torch.Tensor, y: torch.Tensor, fy: torch.Tensor) -> None:
        """uint8 (H, W, C) -> y, fy (H, W), written in place."""
        shape = images.shape[:2]
        if images.shape[-1] == 1:
            index = self.buffer("index1", shape, torch.int32)
            index.copy_(images[..., 0])
            torch.index_select(self.y_table[768:], 0, index.view(-1), out=y.view(-1))
            torch.index_select(self.gray_f_table, 0, index.view(-1), out=fy.view(-1))
            return
        index = self.buffer("index3", (3, *shape), torch.int32)
        index.copy_(images.movedim(-1, 0))
        term = self.buffer("term", shape, y.dtype)
        torch.index_select(self.channel_tables[0], 0, index[0].view(-1), out=y.view(-1))
        for c in (1, 2):
            torch.index_select(self.channel_tables[c], 0, index[c].view(-1), out=term.view(-1))
            y.add_(term)
        y_index = self.buffer("index1", shape, torch.int32)
        y_index.copy_(y)
        torch.index_select(self.f_table, 0, y_index.view(-1), out=fy.view(-1))

    def to_uint8(self, fy: torch.Tensor, y: torch.Tensor, f: torch.Tensor, out: torch.Tensor) -> None:
        """fy, y (H, W) and f = the offsets (H, 2, W), overwritten -> uint8 RGB ``out`` (H, W, 3)."""
        f.add_(fy.unsqueeze(1)).clamp_(min=torch.tensor(_F_MIN, dtype=f.dtype, device=f.device)[:, None])
        c = torch.clamp(f, min=_DELTA, out=self.buffer("c", f.shape, f.dtype))
        x, z = f.mul_(3.0).sub_(c, alpha=2.0).mul_(c).mul_(c).unbind(1)  # 2 c is exact: same bits as above
        plane = self.buffer("plane", fy.shape, fy.dtype)
        index = self.buffer("index_rgb", out.shape, torch.int32)
        for i, k in enumerate(_LINEAR_FROM_XYZ_BINS):
            torch.mul(x, k[0], out=plane).add_(y, alpha=k[1]).add_(z, alpha=k[2])
            index[..., i].copy_(plane.clamp_(0.0, float(RGB_BINS)))
        torch.index_select(self.srgb_table, 0, index.view(-1), out=out.view(-1))
