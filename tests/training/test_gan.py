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
from tests.training.test_train import QUIET, tiny_pool  # noqa: F401  (fixture)
from training.config import GANSettings, TrainConfig
from training.loop import state_file
from training.objectives import Adversarial, Batch, Supervised, Trainee
from training.train import train


def tiny_gan(tmp_path, data, **kw):
    gan = kw.pop("gan", {})
    base = dict(
        data=str(data),
        out=str(tmp_path / "gan"),
        model="unet_s",
        model_args={"head": "bins", "width": 8},
        size=32,
        batch_size=3,
        steps=3,
        lr=1e-3,
        warmup=0,
        schedule="constant",
        optimizer="adam",
        gan=GANSettings(**{"steps": 3, "discriminator_args": {"width": 8, "n_layers": 2}, **gan}),
        log_every=1,
        ckpt_every=2,
        sample_every=100,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_generator_step_leaves_the_discriminator_unchanged():
    gen = create_model("unet_s", head="regression", width=8)
    disc = create_model("patchgan", width=8, n_layers=2)
    objective = Adversarial(Supervised("l1", None, 1.0), disc, 1e-2, (0.5, 0.999), "lsgan", 10.0)
    objective.setup(torch.device("cpu"), lambda m: m)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-2)
    batch = Batch(torch.rand(2, 1, 32, 32) - 0.5, (torch.rand(2, 2, 32, 32) - 0.5) / 2)
    d_before = {k: v.clone() for k, v in disc.named_parameters()}
    g_before = {k: v.clone() for k, v in gen.state_dict().items()}
    loss, terms = objective(Trainee(gen.logits, gen.decode, None), batch)
    d_after_d = {k: v.clone() for k, v in disc.named_parameters()}
    assert any(not torch.equal(d_before[k], d_after_d[k]) for k in d_after_d)  # D did learn in its own step
    objective.opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    # held as constants during G's step: no gradient reaches D, its weights stay (BatchNorm running
    # statistics still follow the batches D sees, as in pix2pix, where D stays in training mode)
    assert all(p.grad is None for p in disc.parameters())
    assert all(torch.equal(d_after_d[k], v) for k, v in disc.named_parameters())
    assert all(p.requires_grad for p in disc.parameters())
    assert any(not torch.equal(g_before[k], v) for k, v in gen.state_dict().items())
    assert set(terms) == {"loss", "l1", "loss_d", "loss_adv"}


@pytest.mark.parametrize("gan_loss", ["lsgan", "bce"])
def test_tiny_gan_run_has_both_stages(tmp_path, tiny_pool, gan_loss):  # noqa: F811
    result = train(tiny_gan(tmp_path, tiny_pool, gan={"gan_loss": gan_loss}, ema=0.9, tensorboard=True), **QUIET)
    rows = list(csv.DictReader(open(tmp_path / "gan" / "log.csv")))
    assert [r["stage"] for r in rows] == ["pretrain"] * 3 + ["gan"] * 3
    assert rows[0]["loss_d"] == "" and float(rows[-1]["loss_d"]) > 0
    assert load_model(result.path).model_name == "unet_s"
    assert any((tmp_path / "gan" / "tensorboard").iterdir())
    assert (tmp_path / "gan" / "samples_gan_000003.png").exists()


def test_resume_after_sigkill(tmp_path, tiny_pool):  # noqa: F811
    out = tmp_path / "gan"
    script = textwrap.dedent(f"""
        import sys
        from training.config import GANSettings, TrainConfig
        from training.train import train
        cfg = TrainConfig(data={str(tiny_pool)!r}, out={str(out)!r}, model="unet_s",
                          model_args={{"head": "bins", "width": 8}}, size=32, batch_size=3, steps=100000,
                          gan=GANSettings(steps=10, discriminator_args={{"width": 8, "n_layers": 2}}),
                          log_every=1, ckpt_every=2, sample_every=10**9)
        resume = "--resume" in sys.argv
        train(cfg, resume=resume, log=lambda *_: None, stop_after=4 if resume else None)
    """)
    state = out / state_file("pretrain")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the training process ended early with code {proc.returncode}")
            if state.exists() and torch.load(state, weights_only=False)["step"] >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(state, weights_only=False)["step"]
    assert saved >= 4 and saved % 2 == 0  # the checkpoint on disk is whole, wherever the kill landed
    subprocess.run([sys.executable, "-c", script, "--resume"], check=True, cwd=os.getcwd())
    assert not list(out.glob(".*.tmp"))  # a temporary left by the killed writer is cleaned up
    assert torch.load(state, weights_only=False)["step"] == saved + 4
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))]
    assert steps[-4:] == [saved + 1, saved + 2, saved + 3, saved + 4]


def test_resume_moves_on_to_the_adversarial_stage(tmp_path, tiny_pool):  # noqa: F811
    straight = train(tiny_gan(tmp_path / "a", tiny_pool), **QUIET)
    cfg = tiny_gan(tmp_path / "b", tiny_pool)
    assert not train(cfg, stop_after=3, **QUIET).finished  # exactly the end of pre-training
    assert not train(cfg, resume=True, stop_after=1, **QUIET).finished
    resumed = train(cfg, resume=True, **QUIET)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: TrainConfig, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    gen = train(cfg, log=lambda *_: None).model
    torch.save(gen.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_cpu_processes_stay_in_sync(tmp_path, tiny_pool):  # noqa: F811
    cfg = tiny_gan(tmp_path, tiny_pool, steps=2, gan={"steps": 2}, batch_size=2)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = create_model("unet_s", head="bins", width=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights on both ranks
    assert any(not torch.equal(a[k], init[k]) for k in a if a[k].is_floating_point())  # and they trained
    rows = list(csv.DictReader(open(tmp_path / "gan" / "log.csv")))
    assert len(rows) == 4  # only rank 0 logs


def test_gan_settings_validation():
    with pytest.raises(ValueError, match="gan_loss"):
        GANSettings(gan_loss="wgan")
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
