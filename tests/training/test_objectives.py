import csv

import pytest
import torch

from edge_colorizer.lab import lab_to_rgb, normalize_ab, normalize_l, rgb_to_lab
from edge_colorizer.metrics.lpips import LPIPS, NETS
from edge_colorizer.models import create_model
from tests.training.test_train import QUIET, tiny_cfg, tiny_pool  # noqa: F401  (fixture)
from training.config import TrainConfig
from training.objectives import Adversarial, Batch, Supervised, Trainee, perceptual_distance
from training.train import train


@pytest.fixture(scope="module")
def alex():
    return LPIPS("alex")


def crops(real_photos, size=48):
    """Two colour photos as a training batch would hold them: (l_norm, ab_norm) and their RGB in [-1, 1]."""
    pair = [real_photos[k][:size, :size].copy() for k in ("chelsea", "coffee")]
    rgb = torch.stack([torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in pair])
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:]), lab_to_rgb(lab) * 2 - 1


def test_perceptual_distance_is_lpips_of_the_colourised_crop(real_photos, alex):
    l_norm, ab_norm, rgb = crops(real_photos)
    assert perceptual_distance(alex, l_norm, ab_norm, ab_norm).item() == 0.0  # the truth is at distance 0
    gray = torch.zeros_like(ab_norm)
    # gray ab gives the gray photo: the same distance LPIPS measures between the gray and the colour photo
    rebuilt = lab_to_rgb(torch.cat((l_norm * 100 + 50, gray), 1)) * 2 - 1
    expected = alex(rebuilt, rgb).mean()
    assert perceptual_distance(alex, l_norm, gray, ab_norm).item() == pytest.approx(expected.item(), rel=1e-4)
    assert expected.item() > 0.05
    # a prediction at a stride is upsampled to the crop; its gradient reaches the prediction only
    pred = torch.nn.functional.avg_pool2d(ab_norm, 4).mul(0.5).requires_grad_()
    distance = perceptual_distance(alex, l_norm, pred, ab_norm)
    distance.backward()
    assert 0 < distance.item() < expected.item() and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in alex.parameters())


def test_supervised_adds_the_weighted_perceptual_term(real_photos, alex):
    l_norm, ab_norm, _ = crops(real_photos, 32)
    net = create_model("unet_s", head="bins", width=8)
    trainee, batch = Trainee(net.logits, net.decode, net.bin_centers), Batch(l_norm, ab_norm)
    torch.manual_seed(0)
    plain_loss, plain = Supervised("bins", None, 1.0)(trainee, batch)
    loss, terms = Supervised("bins", None, 1.0, perceptual=alex, perceptual_weight=3.0)(trainee, batch)
    assert "perceptual" not in plain and terms["perceptual"] > 0
    assert loss.item() == pytest.approx(plain_loss.item() + 3.0 * terms["perceptual"].item(), rel=1e-5)
    assert Supervised("bins", None, 1.0, perceptual=alex, perceptual_weight=0.0).perceptual is None
    gan = Adversarial(
        Supervised("bins", None, 1.0, perceptual=alex, perceptual_weight=1.0),
        create_model("patchgan", width=8, n_layers=2),
        1e-3,
        (0.5, 0.999),
        "lsgan",
        10.0,
    )
    gan.setup(torch.device("cpu"), lambda m: m)
    _, gan_terms = gan(trainee, batch)
    assert set(gan_terms) == {"loss", "l1", "perceptual", "loss_d", "loss_adv"} == set(gan.terms)


def test_a_run_with_a_perceptual_loss_logs_it(tmp_path, tiny_pool):  # noqa: F811
    train(tiny_cfg(tmp_path, tiny_pool, steps=2, perceptual=1.0, perceptual_net="alex"), **QUIET)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 2 and all(float(r["perceptual"]) > 0 for r in rows)


def test_perceptual_settings_are_checked():
    from edge_colorizer.cli import main

    # the command line names the networks without importing torch at start-up: its copy must not drift
    option = next(o for o in main.commands["train"].params if o.name == "perceptual_net")
    assert sorted(option.type.choices) == sorted(NETS)
    with pytest.raises(ValueError, match="perceptual must be >= 0"):
        TrainConfig(perceptual=-1.0)
    with pytest.raises(ValueError, match="perceptual_net must be one of"):
        TrainConfig(perceptual=1.0, perceptual_net="squeeze")
