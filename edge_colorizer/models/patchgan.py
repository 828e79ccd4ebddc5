"""PatchGAN discriminator (Isola et al. 2017) on Lab images: (L, ab) normalised -> patch logits."""

from __future__ import annotations

import torch
import torch.nn as nn

from edge_colorizer.models.registry import register_model


class PatchDiscriminator(nn.Module):
    """70x70-receptive-field PatchGAN for ``n_layers=3``; input is 3-channel normalised Lab."""

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for i in range(1, n_layers + 1):
            c_next = width * min(2**i, 8)
            stride = 1 if i == n_layers else 2
            layers += [
                nn.Conv2d(c, c_next, 4, stride, 1, bias=False),
                nn.BatchNorm2d(c_next),
                nn.LeakyReLU(0.2, True),
            ]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((l_norm, ab_norm), dim=1))


@register_model
def patchgan(**kwargs) -> PatchDiscriminator:
    """PatchGAN discriminator on (L, ab) for GAN training."""
    return PatchDiscriminator(**kwargs)
