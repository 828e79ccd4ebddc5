"""The colorizer in float ops and matrix products: what Core ML converts, and LiteRT's fallback.

Core ML takes no uint8 tensors and needs one graph for every image size, so it converts
:class:`FloatColorizer` (images as floats, the ab upsample as matrix products) rather than
``ColorizerModule``'s uint8 fast path; LiteRT converts ``ColorizerModule`` and uses
:class:`Uint8Colorizer` only where litert-torch fails on it (as it did on an earlier fast path).
Both compute what ``edge_colorizer.colorizer.colorize_reference`` computes, from the same network
and the same :mod:`edge_colorizer.lab` kernel; every export measures its parity against ``ColorizerModule``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from edge_colorizer.colorizer import ColorizerModule, resize_antialiased
from edge_colorizer.lab import denormalize_ab, lab_to_rgb, normalize_l, rgb_to_lab


def bilinear_matrix(out_positions: torch.Tensor, n_in: int) -> torch.Tensor:
    """(n_out, n_in) weights of ``F.interpolate(bilinear, align_corners=False)`` from n_in to n_out samples.

    ``out_positions`` is 0..n_out-1 taken from the data, so n_out stays dynamic in an exported graph.
    Each row is the two-tap tent at the half-pixel source coordinate; renormalising the row gives the
    edge clamping of torch's kernel.
    """
    n_out = out_positions[-1:] + 1.0
    source = (out_positions + 0.5) * (n_in / n_out) - 0.5
    taps = torch.arange(n_in, dtype=out_positions.dtype, device=out_positions.device)
    w = (1.0 - (taps[None, :] - source[:, None]).abs()).clamp(min=0.0)
    return w / w.sum(dim=1, keepdim=True)


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) to the height and width of ``like`` (N, *, H, W), as two matrix products."""
    rows = torch.ones_like(like[0, 0, :, 0]).cumsum(0) - 1.0
    cols = torch.ones_like(like[0, 0, 0, :]).cumsum(0) - 1.0
    return bilinear_matrix(rows, x.shape[-2]) @ x @ bilinear_matrix(cols, x.shape[-1]).T


class FloatColorizer(nn.Module):
    """RGB (or gray) in [0, 1], (N, 1|3, H, W) float -> RGB in [0, 1], (N, 3, H, W): the whole colorizer
    in float ops and matrix products only (any H and W in one graph)."""

    def __init__(self, net: nn.Module, size: int):
        super().__init__()
        self.net = net
        self.size = size

    @classmethod
    def from_colorizer(cls, colorizer: ColorizerModule) -> FloatColorizer:
        return cls(colorizer.net, colorizer.size).eval()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.shape[1] == 1:  # gray becomes R=G=B; a static branch: each export has one channel count
            rgb = torch.cat((rgb, rgb, rgb), dim=1)  # not expand(): Core ML then loses the static 3
        L = rgb_to_lab(rgb)[:, :1]
        ab_small = denormalize_ab(self.net(normalize_l(resize_antialiased(L, self.size))))
        return lab_to_rgb(torch.cat((L, upsample_to(ab_small, L)), dim=1))


class Uint8Colorizer(nn.Module):
    """uint8 (N, H, W, 1|3) -> uint8 (N, H, W, 3), like ``ColorizerModule``, around a :class:`FloatColorizer`."""

    def __init__(self, colorizer: FloatColorizer):
        super().__init__()
        self.colorizer = colorizer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = self.colorizer(images.permute(0, 3, 1, 2).float() / 255.0)
        return (rgb * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
