"""The model changes made for fast, clean exports: the annealed mean without a softmax, SAME padding that
can be frozen, and an encoder without the unused ImageNet classifier."""

import pytest
import torch

import edge_colorizer.models.ab_bins as ab_bins
from edge_colorizer.checkpoint import load_checkpoint
from edge_colorizer.inference import BUNDLED, load_colorizer
from edge_colorizer.models.ab_bins import annealed_mean, annealed_mean_reference, in_gamut_bin_centers
from edge_colorizer.models.encoders import EfficientNetLite0


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_annealed_mean_equals_softmax_then_expectation(scale):
    torch.manual_seed(0)
    centers = in_gamut_bin_centers()
    logits = torch.randn(2, centers.shape[0], 5, 7) * scale  # scale 30 / T 0.38: exp would overflow unshifted
    fast = annealed_mean(logits, centers, 0.38)
    reference = annealed_mean_reference(logits, centers, 0.38)
    assert torch.isfinite(fast).all() and (fast - reference).abs().max() < 1e-3  # Lab units


def test_annealed_mean_in_fp16_stays_finite_and_close():
    torch.manual_seed(1)
    centers = in_gamut_bin_centers()
    logits = torch.randn(1, centers.shape[0], 4, 4) * 20
    half = annealed_mean(logits.half(), centers, 0.38).float()
    # fp16 exp and bin centres (spacing 0.06 at 100) cost under 1.5 Lab units: about one uint8 level
    assert torch.isfinite(half).all() and (half - annealed_mean_reference(logits, centers, 0.38)).abs().max() < 1.5


@pytest.mark.parametrize("name", sorted(n for n, p in BUNDLED.items() if p.suffix == ".pt"))
def test_bundled_models_colorize_within_one_level_of_the_softmax_form(name, monkeypatch):
    from runtimes.runners import parity_images

    colorizer = load_colorizer(name)
    images = [torch.from_numpy(x) for x in parity_images()]
    with torch.inference_mode():
        fast = [colorizer(x).int() for x in images]
        monkeypatch.setattr(ab_bins, "annealed_mean", annealed_mean_reference)
        slow = [colorizer(x).int() for x in images]
    assert max(int((a - b).abs().max()) for a, b in zip(fast, slow, strict=True)) <= 1


def test_the_encoder_has_no_imagenet_classifier_unless_asked():
    features_only = EfficientNetLite0()
    assert not any(k.startswith(EfficientNetLite0.CLASSIFIER_KEYS) for k in features_only.state_dict())
    with pytest.raises(RuntimeError, match="without its ImageNet classifier"):
        features_only(torch.zeros(1, 3, 32, 32))
    classifier = EfficientNetLite0(classifier=True)
    extra = sum(p.numel() for p in classifier.parameters()) - sum(p.numel() for p in features_only.parameters())
    assert extra == 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000  # _conv_head, _bn1, _fc: 1.69 M


def test_the_bundled_teacher_ships_without_the_classifier():
    state = load_checkpoint(BUNDLED["teacher"])["state_dict"]
    assert not any("._conv_head." in k or "backbone._bn1." in k or "._fc." in k for k in state)
    params = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked") and "running" not in k)
    assert 3.7e6 < params < 3.9e6
