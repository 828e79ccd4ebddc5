import csv
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as mp

from edge_colorizer.checkpoint import load_model
from edge_colorizer.models import create_model
from tests.training.test_train import tiny_pool  # noqa: F401  (fixture)
from training.config import GANConfig, gan_recipe
from training.gan import STATE_FILE, discriminator_step, generator_step, train_gan
from training.losses import supervised_loss
from training.train import cosine_lr


def tiny_gan(tmp_path, data, **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "gan"),
        generator="unet_s",
        generator_args={"head": "bins", "width": 8},
        discriminator_args={"width": 8, "n_layers": 2},
        size=32,
        batch_size=3,
        pretrain_steps=3,
        gan_steps=3,
        log_every=1,
        ckpt_every=2,
        sample_every=100,
        lr_pretrain=1e-3,
        tensorboard=False,
    )
    base.update(kw)
    return GANConfig(**base)


def test_generator_step_leaves_the_discriminator_unchanged():
    gen = create_model("unet_s", head="regression", width=8)
    disc = create_model("patchgan", width=8, n_layers=2)
    cfg = GANConfig(supervised_loss="l1", generator_args={"head": "regression"})
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-2)
    l_norm, ab = torch.rand(2, 1, 32, 32) - 0.5, (torch.rand(2, 2, 32, 32) - 0.5) / 2
    loss_sup, _, pred = supervised_loss(gen, l_norm, ab, "l1", None, 1.0)
    fake = torch.nn.functional.interpolate(pred, size=(32, 32), mode="bilinear")
    d_before = {k: v.clone() for k, v in disc.state_dict().items()}
    discriminator_step(disc, opt_d, l_norm, ab, fake, "lsgan")
    d_after_d = {k: v.clone() for k, v in disc.named_parameters()}
    assert any(not torch.equal(d_before[k], d_after_d[k]) for k in d_after_d)  # D did learn in its own step
    g_before = {k: v.clone() for k, v in gen.state_dict().items()}
    opt_d.zero_grad(set_to_none=True)
    generator_step(loss_sup, disc, opt_g, l_norm, fake, cfg)
    # frozen during G's step: its weights are unchanged (BatchNorm running statistics still follow the
    # batches D sees, as in pix2pix, where D stays in training mode during the generator's step)
    assert all(torch.equal(d_after_d[k], v) for k, v in disc.named_parameters())
    assert all(p.grad is None for p in disc.parameters())  # no gradient even accumulated into D
    assert all(p.requires_grad for p in disc.parameters())  # unfrozen afterwards
    assert any(not torch.equal(g_before[k], v) for k, v in gen.state_dict().items())


@pytest.mark.parametrize("gan_loss", ["lsgan", "bce"])
def test_tiny_gan_run_has_both_phases(tmp_path, tiny_pool, gan_loss):  # noqa: F811
    final, _ = train_gan(
        tiny_gan(tmp_path, tiny_pool, gan_loss=gan_loss, ema=0.9, tensorboard=True), log=lambda *_: None
    )
    rows = list(csv.DictReader(open(tmp_path / "gan" / "log.csv")))
    assert [r["phase"] for r in rows] == ["pretrain"] * 3 + ["gan"] * 3
    assert float(rows[0]["loss_d"]) == 0 and float(rows[-1]["loss_d"]) > 0
    assert load_model(final).model_name == "unet_s"
    assert any((tmp_path / "gan" / "tensorboard").iterdir())
    assert (tmp_path / "gan" / "samples_000006.png").exists()


def test_resume_after_sigkill(tmp_path, tiny_pool):  # noqa: F811
    out = tmp_path / "gan"
    script = textwrap.dedent(f"""
        from training.config import GANConfig
        from training.gan import train_gan
        cfg = GANConfig(data={str(tiny_pool)!r}, out={str(out)!r}, generator="unet_s",
                        generator_args={{"head": "bins", "width": 8}}, discriminator_args={{"width": 8, "n_layers": 2}},
                        size=32, batch_size=3, pretrain_steps=100000, gan_steps=10, log_every=1, ckpt_every=2,
                        sample_every=10**9, tensorboard=False)
        import sys
        resume = "--resume" in sys.argv
        train_gan(cfg, resume=resume, log=lambda *_: None, stop_after=4 if resume else None)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / STATE_FILE).exists() and torch.load(out / STATE_FILE, weights_only=False)["step"] >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(out / STATE_FILE, weights_only=False)["step"]
    assert saved >= 4 and saved % 2 == 0  # the checkpoint on disk is whole, wherever the kill landed
    subprocess.run([sys.executable, "-c", script, "--resume"], check=True, cwd=os.getcwd())
    assert not list(out.glob(".*.tmp"))  # a temporary left by the killed writer is cleaned up
    assert torch.load(out / STATE_FILE, weights_only=False)["step"] == saved + 4
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))]
    assert steps[-4:] == [saved + 1, saved + 2, saved + 3, saved + 4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: GANConfig, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    _, gen = train_gan(cfg, log=lambda *_: None)
    torch.save(gen.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_cpu_processes_stay_in_sync(tmp_path, tiny_pool):  # noqa: F811
    cfg = tiny_gan(tmp_path, tiny_pool, pretrain_steps=2, gan_steps=2, batch_size=2)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = create_model("unet_s", head="bins", width=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights on both ranks
    assert any(not torch.equal(a[k], init[k]) for k in a if a[k].is_floating_point())  # and they trained
    rows = list(csv.DictReader(open(tmp_path / "gan" / "log.csv")))
    assert len(rows) == 4  # only rank 0 logs


def test_recipe_and_config_validation():
    cfg = gan_recipe("gan-teacher", data="d", pretrain_steps=5)
    assert cfg.pretrain_steps == 5 and cfg.generator_args["encoder"] == "efficientnet_lite0"
    with pytest.raises(ValueError, match="gan_loss"):
        GANConfig(gan_loss="wgan")
    with pytest.raises(ValueError, match="head"):
        GANConfig(supervised_loss="l1")
    with pytest.raises(KeyError):
        gan_recipe("nope")
    with pytest.raises(ValueError, match="pretrain_schedule"):
        GANConfig(pretrain_schedule="step")


def test_pretraining_follows_the_cosine_schedule(tmp_path, tiny_pool):  # noqa: F811
    cfg = tiny_gan(tmp_path, tiny_pool, pretrain_steps=4, gan_steps=0, pretrain_schedule="cosine")
    train_gan(cfg, log=lambda *_: None)
    state = torch.load(tmp_path / "gan" / STATE_FILE, weights_only=False)
    lr = state["opt_pre"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(cosine_lr(3, cfg.lr_pretrain, 4)) and lr < cfg.lr_pretrain / 2
