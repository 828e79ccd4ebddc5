"""Training and evaluation datasets over an ordinary image folder: (L, ab) pairs, normalised.

Images are decoded once and held in memory at a modest size (the offline pools are small);
training yields random resized crops, flips and a mild jitter of L; evaluation yields fixed
centre crops. Lab conversion goes through the one kernel in :mod:`edge_colorizer.lab`.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from edge_colorizer.io import find_images, read_image
from edge_colorizer.lab import normalize_ab, normalize_l, rgb_to_lab


def load_pool(root: str | Path, short_side: int, log=print) -> list[torch.Tensor]:
    """Decode every readable colour image under ``root`` to uint8 (3, H, W) with the given short side."""
    images = []
    for path in find_images([str(root)]):
        try:
            rgb = read_image(path).rgb
        except ValueError as exc:
            log(f"skip {exc}")
            continue
        img = Image.fromarray(rgb)
        scale = short_side / min(img.size)
        img = img.resize(
            (max(short_side, round(img.width * scale)), max(short_side, round(img.height * scale))), Image.BICUBIC
        )
        images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
    if not images:
        raise ValueError(f"{root}: no readable images")
    return images


def rgb_uint8_to_l_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (*, 3, H, W) -> normalised L (*, 1, H, W) and ab (*, 2, H, W)."""
    lab = rgb_to_lab(rgb.float() / 255.0)
    return normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


class ColorizationDataset(torch.utils.data.Dataset):
    """Yields uint8 crops and L-jitter factors (see :func:`training_pair`); random crops, flips and jitter
    when ``train``, else centre crops."""

    def __init__(
        self,
        root: str | Path,
        size: int = 224,
        train: bool = True,
        min_scale: float = 0.45,
        l_jitter: float = 0.1,
        log=print,
    ):
        self.size = size
        self.train = train
        self.min_scale = min_scale
        self.l_jitter = l_jitter
        self.images = load_pool(root, short_side=round(size * 1.15) if train else size, log=log)

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        if not self.train:
            top, left = (h - self.size) // 2, (w - self.size) // 2
            return img[:, top : top + self.size, left : left + self.size]
        side = round(min(h, w) * random.uniform(self.min_scale, 1.0))
        top, left = random.randint(0, h - side), random.randint(0, w - side)
        crop = img[:, top : top + side, left : left + side].float()
        crop = F.interpolate(
            crop[None], size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )[0]
        if random.random() < 0.5:
            crop = crop.flip(-1)
        return crop.round().clamp(0, 255).to(torch.uint8)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(uint8 crop (3, s, s), jitter (2,))``: the Lab conversion is left to :func:`training_pair`, which
        the training loop runs batched on its device (on a GPU the per-photo Lab maths of the CPU workers
        was most of a step)."""
        jitter = torch.ones(2)
        if self.train and self.l_jitter:
            # mild gamma/contrast jitter of the input luminance only; the colour target is unchanged
            jitter[0] = 1.0 + random.uniform(-self.l_jitter, self.l_jitter)
            jitter[1] = 1.0 + random.uniform(-self.l_jitter, self.l_jitter) / 2
        return self._crop(self.images[index]), jitter


def training_pair(rgb: torch.Tensor, jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 crops (*, 3, s, s) and their jitter (*, 2) (gamma, contrast) -> the network input ``l_norm``
    (*, 1, s, s) and the target ``ab_norm`` (*, 2, s, s), on the crops' device."""
    l_norm, ab_norm = rgb_uint8_to_l_ab(rgb)
    gamma, contrast = jitter[..., 0, None, None, None], jitter[..., 1, None, None, None]
    if bool((jitter != 1).any()):
        l_norm = ((l_norm + 0.5).clamp(0, 1).pow(gamma) - 0.5) * contrast
    return l_norm, ab_norm
