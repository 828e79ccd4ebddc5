"""Small UNet colorization students: L (N, 1, H, W) in -> ab (N, 2, H/s, W/s) out, normalised units.

The encoder halves the resolution three times (/8, as the seed's baseline); the decoder climbs
back to ``1/out_stride`` of the input, where one of two heads predicts ab:
``regression`` (2 channels) or ``bins`` (logits over the quantised ab gamut, decoded by the
annealed mean, Zhang et al. 2016). The colorizer upsamples ab to the image's own resolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.models.ab_bins import ABPredictor
from edge_colorizer.models.registry import register_model


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU with a residual 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.block = ConvBlock(c_in + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat((x, skip), dim=1))


class UNetColorizer(ABPredictor):
    """UNet over L with a regression or ab-bins head; ``forward`` always returns normalised ab."""

    def __init__(
        self,
        width: int = 16,
        head: str = "bins",
        out_stride: int = 4,
        temperature: float = 0.38,
        chroma_gain: float = 1.0,
    ):
        super().__init__()
        if out_stride not in (1, 2, 4):
            raise ValueError(f"out_stride must be 1, 2 or 4, got {out_stride}")
        w = width
        chans = (w, 2 * w, 4 * w, 8 * w)
        self.out_stride = out_stride
        self.stem = ConvBlock(1, chans[0])
        self.down = nn.ModuleList(ConvBlock(chans[i], chans[i + 1], stride=2) for i in range(3))
        self.bottleneck = ConvBlock(chans[3], chans[3])
        # decoder levels: /8 -> /4 -> /2 -> /1, stopping at out_stride
        n_up = {1: 3, 2: 2, 4: 1}[out_stride]
        self.up = nn.ModuleList(UpBlock(chans[3 - i], chans[2 - i], chans[2 - i]) for i in range(n_up))
        self._build_head(chans[3 - n_up], head, temperature, chroma_gain)

    def features(self, l_norm: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(l_norm)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.bottleneck(skips.pop())
        for up in self.up:
            x = up(x, skips.pop())
        return x


@register_model
def unet_s(**kwargs) -> UNetColorizer:
    """Small UNet student (width 16, 0.78M params); the bundled students' architecture."""
    return UNetColorizer(width=kwargs.pop("width", 16), **kwargs)


@register_model
def unet_m(**kwargs) -> UNetColorizer:
    """Medium UNet student (width 32, 3.1M params)."""
    return UNetColorizer(width=kwargs.pop("width", 32), **kwargs)
