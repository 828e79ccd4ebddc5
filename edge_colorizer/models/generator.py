"""The teacher's UNet generator: an ImageNet-pretrained encoder over L, skips into a decoder, an ab head.

Encoders by name (``efficientnet_lite0/1/2``, ``vgg16``, ``resnet18``); decoders ``plain`` (conv blocks)
or ``dynamic`` (each block re-calibrates its features with channel and spatial squeeze-excitation,
after the Dynamic-UNet decoders the seed used). The encoder sees L as a gray RGB image, normalised
as its ImageNet weights expect, so pretrained features stay meaningful.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.lab import L_CENT, L_NORM
from edge_colorizer.models.ab_bins import ABPredictor
from edge_colorizer.models.encoders import (
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite,
    load_efficientnet_lite,
    load_resnet18,
    load_vgg16,
)
from edge_colorizer.models.registry import register_model

LITE_ENCODERS = {"efficientnet_lite0": 0, "efficientnet_lite1": 1, "efficientnet_lite2": 2}
ENCODERS = (*LITE_ENCODERS, "vgg16", "resnet18")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SCSE(nn.Module):
    """Concurrent channel and spatial squeeze-excitation (Roy et al. 2018): feature re-calibration."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel(x) + x * self.spatial(x)


class DecoderBlock(nn.Module):
    def __init__(self, c_in: int, c_skip: int, c_out: int, recalibrate: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in + c_skip, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
        )
        self.recalibrate = SCSE(c_out) if recalibrate else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if skip is not None:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat((x, skip), dim=1)
        return self.recalibrate(self.body(x))


class _Encoder(nn.Module):
    """Wraps a backbone: L (normalised) -> gray RGB normalised for the backbone -> 5 feature maps."""

    def __init__(self, backbone: nn.Module, channels: tuple[int, ...], mean, std):
        super().__init__()
        self.backbone = backbone
        self.channels = channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        gray = ((l_norm * L_NORM + L_CENT) / 100.0).expand(-1, 3, -1, -1)
        return self.backbone.features((gray - self.mean) / self.std)


def build_encoder(name: str, pretrained: bool) -> _Encoder:
    if name in LITE_ENCODERS:
        variant = LITE_ENCODERS[name]
        backbone = load_efficientnet_lite(variant) if pretrained else EfficientNetLite(variant)
        return _Encoder(backbone, backbone.feature_channels, (LITE_MEAN,) * 3, (LITE_STD,) * 3)
    if name == "vgg16":
        backbone = load_vgg16(pretrained)
        return _Encoder(backbone, backbone.FEATURE_CHANNELS, IMAGENET_MEAN, IMAGENET_STD)
    if name == "resnet18":
        backbone = load_resnet18(pretrained)
        return _Encoder(backbone, backbone.FEATURE_CHANNELS, IMAGENET_MEAN, IMAGENET_STD)
    raise ValueError(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}")


class UNetGenerator(ABPredictor):
    """Pretrained-encoder UNet: L (N, 1, H, W) -> ab (N, 2, H/2, W/2), normalised, like the students."""

    DECODERS = ("plain", "dynamic")
    ACCEPTS_PRETRAINED = True  # checkpoints rebuild it with pretrained=False, then load their own weights
    # the EfficientNet classifier, never used by the decoder, left the architecture; older checkpoints
    # (the first teachers, their training states) still hold it and load without it
    LEGACY_PREFIXES = ("encoder.backbone._conv_head.", "encoder.backbone._bn1.", "encoder.backbone._fc.")

    def __init__(
        self,
        encoder: str = "efficientnet_lite0",
        decoder: str = "plain",
        head: str = "bins",
        pretrained: bool = True,
        decoder_width: int = 64,
        temperature: float = 0.38,
        chroma_gain: float = 1.0,
    ):
        super().__init__()
        if decoder not in self.DECODERS:
            raise ValueError(f"decoder must be one of {self.DECODERS}, got {decoder!r}")
        self.encoder = build_encoder(encoder, pretrained)
        c = self.encoder.channels  # strides 2, 4, 8, 16, 32
        w = decoder_width
        widths = (4 * w, 2 * w, w, w)  # outputs at strides 16, 8, 4, 2
        recal = decoder == "dynamic"
        self.blocks = nn.ModuleList(
            [
                DecoderBlock(c[4], c[3], widths[0], recal),
                DecoderBlock(widths[0], c[2], widths[1], recal),
                DecoderBlock(widths[1], c[1], widths[2], recal),
                DecoderBlock(widths[2], c[0], widths[3], recal),
            ]
        )
        self.out_stride = 2
        self._build_head(widths[3], head, temperature, chroma_gain)

    def features(self, l_norm: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(l_norm)
        x = feats[4]
        for block, skip in zip(self.blocks, (feats[3], feats[2], feats[1], feats[0]), strict=True):
            x = block(x, skip)
        return x


@register_model
def unet_generator(**kwargs) -> UNetGenerator:
    """Teacher generator: pretrained encoder (efficientnet_lite0/1/2 | vgg16 | resnet18) UNet."""
    return UNetGenerator(**kwargs)
