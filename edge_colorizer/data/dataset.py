"""Training and evaluation datasets over an ordinary image folder: (L, ab) pairs, normalised.

Images are decoded once and held in memory at a modest size (the offline pools are small);
training yields random resized crops, flips and a mild jitter of L, and optionally pastes a
photographic cut-out (an object on a transparent background) onto the crop, so that object colours
the photos rarely show are learnt (copy-paste augmentation); evaluation yields fixed centre crops.
Lab conversion goes through the one kernel in :mod:`edge_colorizer.lab`.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from edge_colorizer.data.sources import cutout_rejection
from edge_colorizer.io import find_images, is_gray, read_image, shown
from edge_colorizer.lab import normalize_ab, normalize_l, rgb_to_lab


def subset_rank(path: str | Path, root: str | Path) -> float:
    """A stable number in [0, 1) for a file of a pool (a hash of its path under ``root``): the photos with
    rank < f are the pool's fraction f, and a smaller fraction is always inside a larger one."""
    # lexically, not resolved: a file reached through a symbolic link keeps its place in the pool
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
    return int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big") / 2**64


def load_pool(root: str | Path, short_side: int, log=print, fraction: float = 1.0) -> list[torch.Tensor]:
    """Decode every readable colour image under ``root`` to uint8 (3, H, W) with the given short side;
    ``fraction`` < 1 keeps that share of the files (:func:`subset_rank`)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    images = []
    paths = find_images([str(root)], on_problem=lambda problem: log(f"skip {problem}"))
    if fraction < 1.0:
        paths = [p for p in paths if subset_rank(p, root) < fraction]
    for path in paths:
        try:
            rgb = read_image(path, limit_hint="").rgb
        except ValueError as exc:
            log(f"skip {exc}")
            continue
        if is_gray(rgb):  # it would teach ab = 0
            log(f"skip {shown(path)}: a gray photo (R = G = B), no colour to learn")
            continue
        img = Image.fromarray(rgb)
        scale = short_side / min(img.size)
        img = img.resize(
            (max(short_side, round(img.width * scale)), max(short_side, round(img.height * scale))), Image.BICUBIC
        )
        images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
    if not images:
        share = f" in the {fraction:.0%} subset ({len(paths)} files)" if fraction < 1.0 else ""
        raise ValueError(f"{root}: no readable images{share}")
    return images


class CutoutPaster:
    """Pastes one random cut-out from a folder of RGBA images onto a uint8 crop with probability ``prob``:
    its long side ``scale`` × the crop's, mirrored at random, anywhere inside the crop, composited over
    the photo with its alpha (resized premultiplied, so its edges take no dark fringe)."""

    def __init__(self, root: str | Path, size: int, prob: float = 0.5, scale=(0.3, 0.75), log=print):
        if not 0.0 <= prob <= 1.0 or not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"cut-out probability must be in [0, 1] and scales in (0, 1], got {prob}, {scale}")
        self.prob, self.scale, self.size = prob, scale, size
        self.cutouts: list[torch.Tensor] = []  # float (4, h, w): premultiplied RGB and alpha, long side = size
        for path in find_images([str(root)], on_problem=lambda problem: log(f"skip {problem}")):
            try:
                img = read_image(path, limit_hint="")
            except ValueError as exc:
                log(f"skip {exc}")
                continue
            if img.alpha is None:
                log(f"skip {path}: no transparency (not a cut-out)")
                continue
            array = np.dstack([img.rgb, img.alpha])
            reason = cutout_rejection(Image.fromarray(array, "RGBA"))
            if reason:
                log(f"skip {path}: {reason}")
                continue
            rgba = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
            rgba[:3] *= rgba[3:]
            h, w = rgba.shape[1:]
            k = size / max(h, w)
            hw = (max(1, round(h * k)), max(1, round(w * k)))
            self.cutouts.append(F.interpolate(rgba[None], size=hw, mode="bilinear", antialias=True)[0])
        if not self.cutouts:
            raise ValueError(f"{root}: no cut-outs (RGBA images) found")

    def __len__(self) -> int:
        return len(self.cutouts)

    def __call__(self, crop: torch.Tensor) -> torch.Tensor:
        """uint8 (3, s, s) -> uint8 (3, s, s), the cut-out pasted in (or the crop itself)."""
        if random.random() >= self.prob:
            return crop
        cut = random.choice(self.cutouts)
        s = crop.shape[-1]
        long = max(2, round(s * random.uniform(*self.scale)))
        h, w = cut.shape[1:]
        hw = (max(1, round(h * long / max(h, w))), max(1, round(w * long / max(h, w))))
        cut = F.interpolate(cut[None], size=hw, mode="bilinear", antialias=True)[0].clamp(0, 1)
        if random.random() < 0.5:
            cut = cut.flip(-1)
        top, left = random.randint(0, crop.shape[-2] - hw[0]), random.randint(0, s - hw[1])
        out = crop.float()
        region = out[:, top : top + hw[0], left : left + hw[1]]
        out[:, top : top + hw[0], left : left + hw[1]] = region * (1 - cut[3:]) + cut[:3] * 255.0
        return out.round().clamp(0, 255).to(torch.uint8)


def rgb_uint8_to_l_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (*, 3, H, W) -> normalised L (*, 1, H, W) and ab (*, 2, H, W)."""
    lab = rgb_to_lab(rgb.float() / 255.0)
    return normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


class ColorizationDataset(torch.utils.data.Dataset):
    """Yields uint8 crops and L-jitter factors (see :func:`training_pair`); random crops, flips and jitter
    when ``train``, else centre crops. ``full_frame`` is the share of training samples that are the whole
    photo resized to the square (its aspect squashed), the view the colorizer gives the network of any
    frame, instead of a square crop of 45-100 % of the short side."""

    def __init__(
        self,
        root: str | Path,
        size: int = 224,
        train: bool = True,
        min_scale: float = 0.45,
        l_jitter: float = 0.1,
        log=print,
        fraction: float = 1.0,
        cutouts: str | Path | None = None,
        cutout_prob: float = 0.5,
        full_frame: float = 0.0,
    ):
        if not 0.0 <= full_frame <= 1.0:
            raise ValueError(f"full_frame must be in [0, 1], got {full_frame}")
        self.full_frame = full_frame
        self.size = size
        self.train = train
        self.min_scale = min_scale
        self.l_jitter = l_jitter
        self.images = load_pool(root, short_side=round(size * 1.15) if train else size, log=log, fraction=fraction)
        self.paste = CutoutPaster(cutouts, size, cutout_prob, log=log) if cutouts and train else None

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        if not self.train:
            top, left = (h - self.size) // 2, (w - self.size) // 2
            return img[:, top : top + self.size, left : left + self.size]
        if self.full_frame and random.random() < self.full_frame:
            # the whole photo squashed to the square, as the colorizer shows a frame to the network
            crop = img.float()
        else:
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
        crop = self._crop(self.images[index])
        if self.paste is not None:
            crop = self.paste(crop)
        return crop, jitter


def training_pair(rgb: torch.Tensor, jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 crops (*, 3, s, s) and their jitter (*, 2) (gamma, contrast) -> the network input ``l_norm``
    (*, 1, s, s) and the target ``ab_norm`` (*, 2, s, s), on the crops' device."""
    l_norm, ab_norm = rgb_uint8_to_l_ab(rgb)
    gamma, contrast = jitter[..., 0, None, None, None], jitter[..., 1, None, None, None]
    if bool((jitter != 1).any()):
        l_norm = ((l_norm + 0.5).clamp(0, 1).pow(gamma) - 0.5) * contrast
    return l_norm, ab_norm
