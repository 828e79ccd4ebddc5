"""The RGB-in/RGB-out colorizer that every export traces: uint8 NHWC in, uint8 NHWC RGB out.

L is computed at full resolution, resized to the network size, the network predicts ab, ab is
upsampled back and recombined with the full-resolution L (richzhang/colorization's
``postprocess_tens``), all through the one Lab kernel in :mod:`edge_colorizer.lab`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.lab import denormalize_ab, lab_to_rgb, normalize_l, rgb_to_lab

DEFAULT_SIZE = 256


def _triangle_weights(positions: torch.Tensor, out_size: int) -> torch.Tensor:
    """(out_size, n_in) antialiased bilinear weights; ``positions`` is 0..n_in-1 as a float tensor.

    The triangle filter is stretched by the scale when shrinking (as PIL and torch's
    ``antialias=True``), so each output pixel averages its whole footprint.
    """
    n_in = positions[-1:] + 1.0
    scale = n_in / out_size
    support = scale.clamp(min=1.0)
    centers = (torch.arange(out_size, dtype=positions.dtype, device=positions.device) + 0.5)[:, None] * scale
    w = (1.0 - ((positions[None, :] + 0.5 - centers) / support).abs()).clamp(min=0.0)
    return w / w.sum(dim=1, keepdim=True)


def resize_antialiased(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, size, size) like ``F.interpolate(bilinear, antialias=True)``.

    Written as two matrix products over index ramps taken from the data, so the exported graph
    keeps dynamic H and W with only MatMul/CumSum/elementwise ops, which every runtime supports.
    """
    rows = torch.ones_like(x[0, 0, :, 0]).cumsum(0) - 1.0
    cols = torch.ones_like(x[0, 0, 0, :]).cumsum(0) - 1.0
    return _triangle_weights(rows, size) @ x @ _triangle_weights(cols, size).T


class ColorizerModule(nn.Module):
    """Wraps an ab-predicting network into ``uint8 (N, H, W, C) -> uint8 (N, H, W, 3)``, C in {1, 3}."""

    def __init__(self, net: nn.Module, size: int = DEFAULT_SIZE):
        super().__init__()
        if size < 16 or size % 8:
            raise ValueError(f"network size must be a multiple of 8 and >= 16, got {size}")
        self.net = net
        self.size = size

    @property
    def device(self) -> torch.device:
        tensor = next(self.parameters(), None)
        tensor = tensor if tensor is not None else next(self.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def predict_lab(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, C) -> Lab (N, 3, H, W) float32 with the predicted ab."""
        if images.dim() != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"expected uint8 images of shape (N, H, W, 1|3), got {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images, got {images.dtype}")
        x = images.permute(0, 3, 1, 2).float() / 255.0
        x = x.expand(-1, 3, -1, -1)  # gray (C=1) becomes R=G=B; RGB is unchanged
        L = rgb_to_lab(x)[:, :1]
        l_small = resize_antialiased(L, self.size)
        ab_small = denormalize_ab(self.net(normalize_l(l_small)))
        ab = F.interpolate(ab_small, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat((L, ab), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = lab_to_rgb(self.predict_lab(images))
        return (rgb * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class GrayBaseline(nn.Module):
    """The floor every number is compared with: ab = 0 (the input's own luminance, no colour)."""

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(l_norm).expand(-1, 2, -1, -1)
