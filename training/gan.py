"""The GAN teacher's training loop (the seed's §9.2-9.3), in plain sight.

Phase 1 pre-trains the generator with the supervised loss. Phase 2, per batch: a discriminator
step on real vs generated (L, ab); the discriminator is frozen; a generator step on
lambda x supervised + adversarial loss; the discriminator is unfrozen. Checkpoints hold both
networks, both optimisers, the step, the RNG state and the optional EMA, written atomically, so
a run killed at any point continues with ``resume=True``. Under ``torchrun`` it trains with
DistributedDataParallel (NCCL on GPUs, gloo on CPUs) and a DistributedSampler.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from rich.progress import Progress

from edge_colorizer.checkpoint import atomic_torch_save, model_state, save_model
from edge_colorizer.data.dataset import ColorizationDataset
from edge_colorizer.models import create_model
from training.config import GANConfig
from training.losses import class_weights_for, supervised_loss
from training.train import (
    cosine_lr,
    load_run_state,
    open_csv_log,
    progress_columns,
    rng_state,
    sample_grid,
    sample_images,
    set_rng_state,
)

STATE_FILE = "gan_state.pt"


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def full_res(ab_pred: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The generator predicts ab at a stride; the discriminator judges it at the image's resolution."""
    if ab_pred.shape[-2:] == like.shape[-2:]:
        return ab_pred
    return F.interpolate(ab_pred, size=like.shape[-2:], mode="bilinear", align_corners=False)


def discriminator_step(disc: nn.Module, opt_d, l_norm, ab_real, ab_fake, kind: str) -> torch.Tensor:
    """Step 1-2: D on real and (detached) generated images, averaged, one optimiser step."""
    loss_d = 0.5 * (
        adversarial_loss(disc(l_norm, ab_real), True, kind)
        + adversarial_loss(disc(l_norm, ab_fake.detach()), False, kind)
    )
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return loss_d.detach()


def generator_step(gen_loss_sup: torch.Tensor, disc: nn.Module, opt_g, l_norm, ab_fake, cfg: GANConfig):
    """Steps 3-6: freeze D, G's loss = lambda x supervised + adversarial (fool D), G step, unfreeze D."""
    set_requires_grad(disc, False)
    try:
        loss_adv = adversarial_loss(disc(l_norm, ab_fake), True, cfg.gan_loss)
        loss_g = cfg.gan_lambda * gen_loss_sup + loss_adv
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    finally:
        set_requires_grad(disc, True)
    return loss_g.detach(), loss_adv.detach()


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def train_gan(cfg: GANConfig, resume: bool = False, log=print, stop_after: int | None = None) -> tuple[Path, nn.Module]:
    """Train the teacher; returns (final checkpoint or state path, the generator)."""
    rank, world = _dist_info()
    distributed = world > 1
    device = torch.device("cpu")
    if distributed and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    main_process = rank == 0
    if not main_process:
        log = lambda *_: None  # noqa: E731
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank

    dataset = ColorizationDataset(cfg.data, size=cfg.size, train=True, log=log)
    log(f"training on {len(dataset)} images from {cfg.data} ({world} process(es), {device})")
    gen = create_model(cfg.generator, **cfg.generator_args).to(device)
    disc = create_model("patchgan", **cfg.discriminator_args).to(device)
    opt_pre = torch.optim.Adam(gen.parameters(), lr=cfg.lr_pretrain)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    ema = None
    if cfg.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            gen, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True
        )
    class_weights = None
    if cfg.supervised_loss == "bins":
        class_weights = class_weights_for(dataset, gen.bin_centers.cpu(), cfg.rebalance).to(device)

    step = 0
    state_path = out / STATE_FILE
    if resume:
        state = load_run_state(state_path, cfg, device)
        gen.load_state_dict(state["generator"]["state_dict"])
        disc.load_state_dict(state["discriminator"]["state_dict"])
        for opt, key in ((opt_pre, "opt_pre"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            opt.load_state_dict(state[key])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        step = state["step"]
        set_rng_state(state["rng"][rank])  # one RNG state per rank
        log(f"resumed from step {step}")

    sup_model, disc_train = gen, disc
    if distributed:
        ids = [device] if device.type == "cuda" else None
        sup_model = _DDPColorizer(nn.parallel.DistributedDataParallel(_Logits(gen), device_ids=ids), gen)
        disc_train = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
    sampler = torch.utils.data.DistributedSampler(dataset, world, rank, seed=cfg.seed) if distributed else None
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True
    )

    def sync_buffers() -> None:
        # DDP broadcasts rank 0's buffers (BatchNorm statistics) before each forward; after the last
        # forward, do the same once more so every rank holds the model rank 0 saves
        if distributed:
            for module in (gen, disc):
                for buf in module.buffers():
                    dist.broadcast(buf, src=0)

    def save_state() -> None:
        sync_buffers()
        rngs = [None] * world
        if distributed:
            dist.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        if not main_process:
            return
        atomic_torch_save(
            {
                "config": dataclasses.asdict(cfg),
                "generator": model_state(gen),
                "discriminator": model_state(disc),
                "opt_pre": opt_pre.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "step": step,
                "rng": rngs,
            },
            state_path,
        )

    writer = csv_file = tb = None
    if main_process:
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
        header = ["step", "phase", "loss_sup", "l1", "loss_d", "loss_adv", "seconds"]
        csv_file, writer = open_csv_log(out / "log.csv", header, resume)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                log("tensorboard is not installed: logging to log.csv only")
        if cfg.wandb:
            try:
                import wandb

                wandb.init(project="edge-colorizer", config=dataclasses.asdict(cfg), dir=str(out))
            except ImportError:
                log("wandb was asked for but is not installed: logging to log.csv only")
    samples = sample_images(dataset)

    last_step = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    running: list[list[float]] = []
    t0 = time.perf_counter()
    epoch = step // max(1, len(loader))
    gen.train()
    disc.train()
    with Progress(*progress_columns("gan"), disable=not main_process) as progress:
        task = progress.add_task("gan", total=cfg.steps, completed=step, info="")
        while step < last_step:
            if sampler is not None:
                sampler.set_epoch(epoch)
            epoch += 1
            for l_norm, ab_norm in loader:
                if step >= last_step:
                    break
                l_norm, ab_norm = l_norm.to(device), ab_norm.to(device)
                phase = "pretrain" if step < cfg.pretrain_steps else "gan"
                loss_sup, l1, pred = supervised_loss(
                    sup_model, l_norm, ab_norm, cfg.supervised_loss, class_weights, cfg.l1_weight
                )
                if phase == "pretrain":
                    if cfg.pretrain_schedule == "cosine":
                        for group in opt_pre.param_groups:
                            group["lr"] = cosine_lr(step, cfg.lr_pretrain, cfg.pretrain_steps)
                    opt_pre.zero_grad(set_to_none=True)
                    loss_sup.backward()
                    opt_pre.step()
                    loss_d = loss_adv = torch.zeros(())
                else:
                    ab_fake = full_res(pred, ab_norm)
                    loss_d = discriminator_step(disc_train, opt_d, l_norm, ab_norm, ab_fake, cfg.gan_loss)
                    # the frozen D is called unwrapped: its weights must not (and need not) be all-reduced
                    _, loss_adv = generator_step(loss_sup, disc, opt_g, l_norm, ab_fake, cfg)
                if ema is not None:
                    ema.update_parameters(gen)
                step += 1
                running.append([loss_sup.item(), l1.item(), float(loss_d), float(loss_adv)])
                if main_process and (step % cfg.log_every == 0 or step == cfg.steps):
                    means = np.mean(running, axis=0)
                    running.clear()
                    writer.writerow([step, phase, *(f"{v:.5f}" for v in means), f"{time.perf_counter() - t0:.1f}"])
                    csv_file.flush()
                    if tb is not None:
                        for name, v in zip(("loss_sup", "l1", "loss_d", "loss_adv"), means, strict=True):
                            tb.add_scalar(f"{phase}/{name}", v, step)
                    progress.update(task, info=f"{phase} sup {means[0]:.3f} d {means[2]:.3f} adv {means[3]:.3f}")
                if step % cfg.ckpt_every == 0:
                    save_state()
                if main_process and (step % cfg.sample_every == 0 or step == cfg.steps):
                    gen.eval()
                    sample_grid(gen, samples, out / f"samples_{step:06d}.png", size=cfg.size)
                    gen.train()
                progress.update(task, completed=step)
    save_state()
    if csv_file:
        csv_file.close()
    if tb is not None:
        tb.close()
    final_model = ema.module if ema is not None else gen
    if step < cfg.steps:
        log(f"stopped at step {step} of {cfg.steps}; continue with --resume")
        return state_path, final_model
    final = out / "model.pt"
    if main_process:
        final_model.eval()
        save_model(final_model, final, gan_config=dataclasses.asdict(cfg), steps=step)
        log(f"done: {step} steps in {time.perf_counter() - t0:.0f} s; generator at {final}")
    return final, final_model


class _Logits(nn.Module):
    """DDP wraps this: its forward is the colorizer's raw head output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.model.logits(l_norm)


class _DDPColorizer:
    """What ``supervised_loss`` needs (logits, decode, bin centres), with logits through DDP."""

    def __init__(self, ddp: nn.Module, model: nn.Module):
        self.logits = ddp
        self.decode = model.decode
        self.bin_centers = getattr(model, "bin_centers", None)
