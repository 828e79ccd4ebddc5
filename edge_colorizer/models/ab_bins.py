"""Quantised ab gamut (Zhang et al. 2016): bin centres, soft-encoding and annealed-mean decoding."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from edge_colorizer.lab import AB_NORM, rgb_to_lab

GRID_STEP = 10.0
GRID_RANGE = 110.0


def in_gamut_bin_centers(step: float = GRID_STEP, samples_per_axis: int = 64) -> torch.Tensor:
    """ab centres (Q, 2) of the grid cells that some sRGB colour falls into (Q = 265 for step 10)."""
    return _bin_centers(step, samples_per_axis).clone()  # a copy: buffers are loaded into in place


@lru_cache(maxsize=4)
def _bin_centers(step: float, samples_per_axis: int) -> torch.Tensor:
    # computed on the CPU explicitly, so a model can be built on the meta device (to check a checkpoint's
    # shapes before allocating anything) and still get real centres
    axis = torch.linspace(0.0, 1.0, samples_per_axis, dtype=torch.float64, device="cpu")
    rgb = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=0).reshape(3, -1, 1)
    ab = rgb_to_lab(rgb)[1:].reshape(2, -1).T
    n = int(round(2 * GRID_RANGE / step))
    cells = ((ab + GRID_RANGE) / step).floor().clamp(0, n - 1).long()
    occupied = torch.zeros(n, n, dtype=torch.bool, device="cpu")
    occupied[cells[:, 0], cells[:, 1]] = True
    ia, ib = torch.nonzero(occupied, as_tuple=True)
    centers = torch.stack((ia, ib), dim=1).double() * step - GRID_RANGE + step / 2
    return centers.float()


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """ab (N, 2, H, W) in Lab units -> target distribution (N, Q, H, W) over the k nearest bins."""
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers.to(flat)).pow(2)
    near_d2, near_idx = d2.topk(k, dim=1, largest=False)
    weights = torch.softmax(-near_d2 / (2 * sigma**2), dim=1)
    target = torch.zeros(flat.shape[0], centers.shape[0], dtype=ab.dtype, device=ab.device)
    target.scatter_(1, near_idx, weights)
    return target.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits (N, Q, H, W) -> ab (N, 2, H, W) in Lab units: E[ab] under softmax(logits / T).

    Written as exp(logits / T - max) -> one 1x1 convolution whose weights are [bin centres; ones]
    -> numerator / denominator: the same maths as a softmax followed by the expectation, but a
    softmax over the channel axis is slow in ONNX Runtime (it transposes 265 channels to the last
    axis and back; it was 75 of the teacher's 105 ms), while a channel max and a 1x1 conv are fast
    everywhere. Subtracting the max keeps exp() finite, in fp16 too.
    """
    scaled = logits / temperature
    weights = torch.exp(scaled - scaled.amax(dim=1, keepdim=True))
    centers = centers.to(weights.dtype)
    kernel = torch.cat((centers.T, torch.ones_like(centers[:, :1]).T), dim=0)[:, :, None, None]  # (3, Q, 1, 1)
    moments = F.conv2d(weights, kernel)
    return moments[:, :2] / moments[:, 2:]


def annealed_mean_reference(logits: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """The textbook form (softmax, then the expectation), kept as the test oracle of :func:`annealed_mean`."""
    probs = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, centers.to(probs.dtype))


def rebalancing_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights from an empirical bin prior (Zhang et al. eq. 4), mean 1 under the prior."""
    prior = prior / prior.sum()
    mixed = (1 - lam) * prior + lam / prior.numel()
    w = 1.0 / mixed
    return w / (prior * w).sum()


# Doubling chroma throws most colours out of gamut: a gain past it is a typo, not a setting (the release's
# and the command line's bound; the model itself takes any gain > 0).
MAX_CHROMA_GAIN = 2.0


def good_chroma_gain(value: float) -> bool:
    """Whether ``value`` can scale decoded ab: > 0 (0 would be gray) and finite."""
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


class ABPredictor(torch.nn.Module):
    """Base of the colorizers: ``features`` (subclass) -> a 1x1 ``head`` -> ``decode`` -> normalised ab.

    The head is ``regression`` (2 channels, ab / AB_NORM) or ``bins`` (logits over the in-gamut ab bins,
    decoded by the annealed mean at ``temperature``). ``logits`` gives the raw head output for losses.
    ``chroma_gain`` multiplies the decoded ab (hue kept, chroma scaled; 1 leaves it out of the graph): a
    release setting, chosen on validation like the temperature, for a model that comes out dull.
    """

    HEADS = ("regression", "bins")

    def _build_head(self, c_in: int, head: str, temperature: float, chroma_gain: float = 1.0) -> None:
        if head not in self.HEADS:
            raise ValueError(f"head must be one of {self.HEADS}, got {head!r}")
        self.set_chroma_gain(chroma_gain)
        self.head_type = head
        self.temperature = temperature
        if head == "bins":
            self.register_buffer("bin_centers", in_gamut_bin_centers())
            self.head = torch.nn.Conv2d(c_in, self.bin_centers.shape[0], 1)
        else:
            self.head = torch.nn.Conv2d(c_in, 2, 1)

    def set_chroma_gain(self, value: float) -> None:
        """Decode with the ab multiplied by ``value`` from now on; a ValueError if it is not > 0 and finite."""
        if not good_chroma_gain(value):
            raise ValueError(f"chroma_gain must be > 0 and finite, got {value!r}")
        self.chroma_gain = float(value)

    def features(self, l_norm: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Raw head output: bin logits (N, Q, h, w) or ab (N, 2, h, w)."""
        return self.head(self.features(l_norm))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        if self.head_type == "bins":
            ab = annealed_mean(logits, self.bin_centers, self.temperature) / AB_NORM
        else:
            ab = logits
        return ab if self.chroma_gain == 1.0 else ab * self.chroma_gain

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.decode(self.logits(l_norm))
