"""Architectures of Zhang et al.'s ECCV 2016 and SIGGRAPH 2017 colorizers (richzhang/colorization).

Built here with random weights, as peers for speed only: the benchmark labels their rows
"architecture only, speed only". Both take normalised L and return normalised ab at 1/4
resolution (ECCV16) or full resolution (SIGGRAPH17), like every model in the zoo.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from edge_colorizer.models.registry import register_model


def _convs(c_in: int, c_out: int, n: int, last_stride: int = 1, dilation: int = 1, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n):
        stride = last_stride if i == n - 1 else 1
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, stride, dilation, dilation), nn.ReLU(True)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    return layers


class ECCV16(nn.Module):
    """Colorful Image Colorization (Zhang, Isola, Efros 2016): VGG-style net, 313-bin head, annealed mean."""

    def __init__(self, n_bins: int = 313):
        super().__init__()
        self.body = nn.Sequential(
            *_convs(1, 64, 2, last_stride=2),
            *_convs(64, 128, 2, last_stride=2),
            *_convs(128, 256, 3, last_stride=2),
            *_convs(256, 512, 3),
            *_convs(512, 512, 3, dilation=2),
            *_convs(512, 512, 3, dilation=2),
            *_convs(512, 512, 3),
            nn.ConvTranspose2d(512, 256, 4, 2, 1),
            nn.ReLU(True),
            *_convs(256, 256, 2, bn=False),
            nn.Conv2d(256, n_bins, 1),
        )
        self.out = nn.Conv2d(n_bins, 2, 1, bias=False)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.out(torch.softmax(self.body(l_norm), dim=1))


class SIGGRAPH17(nn.Module):
    """Real-Time User-Guided Colorization (Zhang et al. 2017), run without user hints (zeros)."""

    def __init__(self):
        super().__init__()
        self.model1 = nn.Sequential(*_convs(4, 64, 2))
        self.model2 = nn.Sequential(*_convs(64, 128, 2))
        self.model3 = nn.Sequential(*_convs(128, 256, 3))
        self.model4 = nn.Sequential(*_convs(256, 512, 3))
        self.model5 = nn.Sequential(*_convs(512, 512, 3, dilation=2))
        self.model6 = nn.Sequential(*_convs(512, 512, 3, dilation=2))
        self.model7 = nn.Sequential(*_convs(512, 512, 3))
        self.model8up = nn.ConvTranspose2d(512, 256, 4, 2, 1)
        self.model3short8 = nn.Conv2d(256, 256, 3, 1, 1)
        self.model8 = nn.Sequential(nn.ReLU(True), *_convs(256, 256, 2))
        self.model9up = nn.ConvTranspose2d(256, 128, 4, 2, 1)
        self.model2short9 = nn.Conv2d(128, 128, 3, 1, 1)
        self.model9 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, 1, 1), nn.ReLU(True), nn.BatchNorm2d(128))
        self.model10up = nn.ConvTranspose2d(128, 128, 4, 2, 1)
        self.model1short10 = nn.Conv2d(64, 128, 3, 1, 1)
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, 1, 1), nn.LeakyReLU(0.2))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        hints = torch.zeros_like(l_norm).expand(-1, 3, -1, -1)  # no ab hints, empty mask
        c1 = self.model1(torch.cat((l_norm, hints), dim=1))
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c4 = self.model4(c3[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(c4)))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10)


@register_model
def eccv16(**kwargs) -> ECCV16:
    """Zhang et al. 2016 architecture (32M params); random weights: speed only."""
    return ECCV16(**kwargs)


@register_model
def siggraph17(**kwargs) -> SIGGRAPH17:
    """Zhang et al. 2017 architecture (34M params), no hints; random weights: speed only."""
    return SIGGRAPH17(**kwargs)
