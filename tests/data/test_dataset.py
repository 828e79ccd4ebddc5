import random

import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.data.dataset import (
    ColorizationDataset,
    CutoutPaster,
    load_pool,
    rgb_uint8_to_l_ab,
    subset_rank,
    training_pair,
)
from edge_colorizer.lab import denormalize_ab, denormalize_l, lab_to_rgb


@pytest.fixture
def folder(tmp_path, real_photos):
    for name, img in real_photos.items():
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    (tmp_path / "broken.png").write_bytes(b"junk")
    return tmp_path


def test_train_items_are_random_crops_in_range(folder):
    logs = []
    ds = ColorizationDataset(folder, size=48, train=True, log=logs.append)
    assert len(ds) == 3 and any("broken.png" in line for line in logs)
    rgb, jitter = ds[0]
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 48, 48) and jitter.shape == (2,)
    assert 0.9 <= jitter[0] <= 1.1 and 0.95 <= jitter[1] <= 1.05
    l1, ab1 = training_pair(*ds[0])
    l2, _ = training_pair(*ds[0])
    assert l1.shape == (1, 48, 48) and ab1.shape == (2, 48, 48)
    assert -0.5 - 0.1 <= l1.min() and l1.max() <= 0.5 + 0.1 and ab1.abs().max() <= 1.0
    assert not torch.equal(l1, l2)  # random crop/flip/jitter


def test_eval_items_are_fixed_centre_crops(folder):
    ds = ColorizationDataset(folder, size=48, train=False)
    a, b = ds[1], ds[1]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], torch.ones(2))  # no jitter either


def test_a_batch_converts_like_each_crop_alone(folder):
    ds = ColorizationDataset(folder, size=32, train=True)
    items = [ds[i] for i in range(3)]
    l_batch, ab_batch = training_pair(torch.stack([r for r, _ in items]), torch.stack([j for _, j in items]))
    for k, (rgb, jitter) in enumerate(items):
        l_one, ab_one = training_pair(rgb, jitter)
        assert torch.allclose(l_batch[k], l_one, atol=1e-6) and torch.allclose(ab_batch[k], ab_one, atol=1e-6)
    gray = torch.full((3, 8, 8), 128, dtype=torch.uint8)
    l_plain, _ = training_pair(gray, torch.ones(2))
    l_jit, _ = training_pair(gray, torch.tensor([1.1, 1.05]))
    assert torch.allclose(l_jit, (((l_plain + 0.5) ** 1.1) - 0.5) * 1.05)


def test_l_ab_conversion_round_trips_through_the_kernel(real_photos):
    rgb = torch.from_numpy(real_photos["coffee"][:64, :64]).permute(2, 0, 1)
    l_norm, ab_norm = rgb_uint8_to_l_ab(rgb)
    lab = torch.cat((denormalize_l(l_norm), denormalize_ab(ab_norm)))
    back = (lab_to_rgb(lab) * 255).round()
    assert (back - rgb.float()).abs().max() <= 1


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no readable images"):
        ColorizationDataset(tmp_path)


def test_pool_names_each_file_it_passes_over(tmp_path, real_photos):
    Image.fromarray(real_photos["coffee"]).save(tmp_path / "colour.png")
    Image.fromarray(real_photos["coffee"][..., 1]).save(tmp_path / "gray.png")  # would teach ab = 0
    (tmp_path / "broken.png").write_bytes(b"junk")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    lines = []
    assert len(load_pool(tmp_path, 16, log=lines.append)) == 1
    assert sorted(line.split(": ")[0] for line in lines) == [
        f"skip {tmp_path / name}" for name in ("broken.png", "gone.png", "gray.png")
    ]
    assert any("gray.png: a gray photo (R = G = B), no colour to learn" in line for line in lines)


def _cutout_folder(tmp_path):
    """A pure red disc on a transparent black square (a resize that is not premultiplied would darken
    its rim), and two files that are not cut-outs: an RGB image and an RGBA one that is all opaque."""
    folder = tmp_path / "cutouts"
    folder.mkdir()
    yy, xx = np.mgrid[:80, :80]
    inside = (yy - 40) ** 2 + (xx - 40) ** 2 < 30**2
    disc = np.zeros((80, 80, 4), np.uint8)
    disc[inside] = (255, 0, 0, 255)
    Image.fromarray(disc, "RGBA").save(folder / "disc.png")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(folder / "opaque.png")
    Image.fromarray(np.full((80, 80, 4), 200, np.uint8), "RGBA").save(folder / "solid.png")
    return folder


def test_cutout_paster_composites_only_under_the_alpha(tmp_path):
    logs = []
    paste = CutoutPaster(_cutout_folder(tmp_path), size=64, prob=1.0, scale=(0.5, 0.5), log=logs.append)
    assert len(paste) == 1 and any("opaque.png" in line and "no transparency" in line for line in logs)
    assert any("solid.png" in line and "opaque" in line for line in logs)
    crop = torch.full((3, 64, 64), 40, dtype=torch.uint8)
    random.seed(0)
    out = paste(crop)
    changed = (out != crop).any(0)
    # a disc of diameter ~0.75 x 32 pixels: about pi * 12^2 pixels changed, the rest untouched
    assert 300 < int(changed.sum()) < 650
    inside = out[:, changed]
    assert (inside[0] >= inside[1]).all() and int(inside[0].max()) == 255  # red pasted, blended at the rim
    # premultiplied: the rim blends red over the background, never towards the black transparent pixels
    assert int(inside[0].min()) >= 40 and int((inside[1:] > 40).sum()) == 0
    assert torch.equal(out[:, ~changed], crop[:, ~changed])
    (tmp_path / "again").mkdir()
    never = CutoutPaster(_cutout_folder(tmp_path / "again"), 64, prob=0.0)
    assert torch.equal(never(crop), crop)


def test_cutout_paster_rejects_a_folder_without_cutouts(tmp_path):
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "opaque.png")
    with pytest.raises(ValueError, match="no cut-outs"):
        CutoutPaster(tmp_path, size=32)


def test_dataset_pastes_cutouts_in_training_only(folder, tmp_path):
    cutouts = _cutout_folder(tmp_path)
    train = ColorizationDataset(folder, size=48, train=True, cutouts=cutouts, cutout_prob=1.0)
    random.seed(1)
    reds = [(rgb[0].int() - rgb[1].int() > 200).sum() for rgb, _ in (train[i % 3] for i in range(6))]
    assert all(r > 20 for r in reds)  # every crop carries the (saturated red) disc
    assert ColorizationDataset(folder, size=48, train=False, cutouts=cutouts).paste is None


def test_subset_is_stable_and_nested(tmp_path):
    for i in range(40):
        Image.fromarray(np.full((24, 24, 3), (i * 6, 100, 200 - i * 4), np.uint8)).save(tmp_path / f"p{i:02d}.png")
    paths = sorted(tmp_path.glob("*.png"))
    ranks = [subset_rank(p, tmp_path) for p in paths]
    assert ranks == [subset_rank(p, tmp_path) for p in paths] and all(0 <= r < 1 for r in ranks)
    quarter = {p for p, r in zip(paths, ranks, strict=True) if r < 0.25}
    half = {p for p, r in zip(paths, ranks, strict=True) if r < 0.5}
    assert quarter < half and 3 <= len(quarter) <= 17 and 10 <= len(half) <= 30
    assert len(load_pool(tmp_path, 16, fraction=0.5)) == len(half)
    assert len(load_pool(tmp_path, 16)) == 40
    with pytest.raises(ValueError, match="fraction"):
        load_pool(tmp_path, 16, fraction=0)


def test_full_frame_samples_are_the_whole_photo_squashed_to_the_square(folder):
    """``full_frame=1``: every sample is the whole (pool-sized) photo resized to size x size, mirrored or
    not, which is how the colorizer shows any frame to the network; ``0`` draws nothing extra from the RNG."""
    import torch.nn.functional as F

    ds = ColorizationDataset(folder, size=48, train=True, full_frame=1.0, log=lambda *_: None)
    whole = [
        F.interpolate(img[None].float(), size=(48, 48), mode="bilinear", antialias=True, align_corners=False)[0]
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for img in ds.images
    ]
    assert any(img.shape[1] != img.shape[2] for img in ds.images)  # chelsea and coffee: their aspect changes
    seen_flip = set()
    for _ in range(12):
        for i in range(len(ds)):
            rgb, _ = ds[i]
            flipped = torch.equal(rgb, whole[i].flip(-1))
            assert torch.equal(rgb, whole[i]) or flipped
            seen_flip.add(flipped)
    assert seen_flip == {True, False}
    # full_frame 0: the crops of before, from the same random draws (side, top, left, flip)
    ds = ColorizationDataset(folder, size=48, full_frame=0.0, log=lambda *_: None)
    for img in ds.images:
        random.seed(5)
        _, h, w = img.shape
        side = round(min(h, w) * random.uniform(0.45, 1.0))
        top, left = random.randint(0, h - side), random.randint(0, w - side)
        crop = img[None, :, top : top + side, left : left + side].float()
        crop = F.interpolate(crop, size=(48, 48), mode="bilinear", antialias=True, align_corners=False)[0]
        crop = crop.flip(-1) if random.random() < 0.5 else crop
        random.seed(5)
        assert torch.equal(ds._crop(img), crop.round().clamp(0, 255).to(torch.uint8))
    with pytest.raises(ValueError, match="full_frame"):
        ColorizationDataset(folder, size=48, full_frame=1.5)
