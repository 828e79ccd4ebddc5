import pytest
import torch
from PIL import Image

from edge_colorizer.data.dataset import ColorizationDataset, rgb_uint8_to_l_ab, training_pair
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
