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


class ColorizerModule(nn.Module):
    """Wraps an ab-predicting network into ``uint8 (N, H, W, C) -> uint8 (N, H, W, 3)``, C in {1, 3}."""

    def __init__(self, net: nn.Module, size: int = DEFAULT_SIZE, antialias: bool = True):
        super().__init__()
        if size < 16 or size % 8:
            raise ValueError(f"network size must be a multiple of 8 and >= 16, got {size}")
        self.net = net
        self.size = size
        self.antialias = antialias

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
        l_small = F.interpolate(
            L, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=self.antialias
        )
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
