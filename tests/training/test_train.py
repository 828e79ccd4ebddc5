import csv

import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.checkpoint import load_model
from training.config import TrainConfig, recipe
from training.train import cosine_lr, train


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory, real_photos):
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    for i, img in enumerate(list(real_photos.values()) * 2):
        y, x = rng.integers(0, 100, 2)
        Image.fromarray(img[y : y + 200, x : x + 240]).resize((60, 50)).save(root / f"p{i}.png")
    return root


def tiny_cfg(tmp_path, data, **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "run"),
        model="unet_s",
        model_args={"head": "bins", "width": 8},
        size=32,
        batch_size=6,
        steps=6,
        lr=1e-3,
        warmup=2,
        log_every=1,
        ckpt_every=3,
        sample_every=100,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_training_reduces_loss_and_writes_artifacts(tmp_path, tiny_pool):
    cfg = tiny_cfg(tmp_path, tiny_pool, steps=30, lr=3e-3, log_every=5)
    final = train(cfg, log=lambda *_: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 6 and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    model = load_model(final)
    assert model.model_args == {"head": "bins", "width": 8}
    assert (tmp_path / "run" / "samples_000030.png").exists()
    assert (tmp_path / "run" / "config.json").exists()


def test_resume_continues_exactly(tmp_path, tiny_pool):
    straight = train(tiny_cfg(tmp_path / "a", tiny_pool), log=lambda *_: None)
    cfg_b = tiny_cfg(tmp_path / "b", tiny_pool)
    train(cfg_b, log=lambda *_: None, stop_after=3)
    assert not (tmp_path / "b" / "run" / "model.pt").exists()
    resumed = train(cfg_b, resume=True, log=lambda *_: None)
    a, b = load_model(straight).state_dict(), load_model(resumed).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "b" / "run" / "log.csv"))]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_other_config_or_missing_state(tmp_path, tiny_pool):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tiny_cfg(tmp_path, tiny_pool), resume=True, log=lambda *_: None)
    train(tiny_cfg(tmp_path, tiny_pool), log=lambda *_: None, stop_after=3)
    with pytest.raises(ValueError, match="different configuration"):
        train(tiny_cfg(tmp_path, tiny_pool, lr=5e-3), resume=True, log=lambda *_: None)


def test_l1_recipe_trains_regression_head(tmp_path, tiny_pool):
    cfg = tiny_cfg(tmp_path, tiny_pool, loss="l1", model_args={"head": "regression", "width": 8}, steps=3)
    assert load_model(train(cfg, log=lambda *_: None)).head_type == "regression"


def test_config_rejects_mismatched_loss_and_head():
    with pytest.raises(ValueError, match="head"):
        TrainConfig(loss="l1", model_args={"head": "bins"})
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="mse")
    with pytest.raises(KeyError, match="student"):
        recipe("nope")


def test_cosine_lr_warms_up_then_decays_to_the_floor():
    lrs = [cosine_lr(s, 1.0, 100, warmup=10) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.525)
    assert lrs[100] == pytest.approx(0.05) and cosine_lr(500, 1.0, 100) == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[10:-1], lrs[11:], strict=True))
