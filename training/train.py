"""The supervised training loop, in plain sight: data, loss, step, log, checkpoint, resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edge_colorizer.checkpoint import atomic_torch_save, model_state, save_model
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.data.dataset import ColorizationDataset
from edge_colorizer.io import write_image
from edge_colorizer.lab import lab_to_rgb
from edge_colorizer.models import create_model
from training.config import TrainConfig
from training.losses import class_weights_for, supervised_loss

STATE_FILE = "train_state.pt"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def cosine_lr(step: int, base: float, total: int, warmup: int = 0, floor: float = 0.05) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to ``floor * base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def lr_at(step: int, cfg: TrainConfig) -> float:
    return cosine_lr(step, cfg.lr, cfg.steps, cfg.warmup)


def sample_grid(model: torch.nn.Module, images: list[torch.Tensor], path: Path, size: int) -> None:
    """PNG grid, one row per image (centre square): gray input | prediction | ground truth."""
    colorizer = ColorizerModule(model, size=size).eval()
    rows = []
    with torch.no_grad():
        for img in images:
            _, h, w = img.shape
            side = min(h, w)
            img = img[:, (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
            rgb = img.permute(1, 2, 0)[None]  # (1, side, side, 3) uint8
            lab = colorizer.predict_lab(rgb)  # one network pass serves both panels
            gray_rgb = (lab[:, :1] / 100.0 * 255).round().clamp(0, 255).to(torch.uint8)[0, 0]
            pred = (lab_to_rgb(lab) * 255.0).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
            rows.append(torch.cat((gray_rgb[..., None].expand(-1, -1, 3), pred, rgb[0]), dim=1))
    write_image(path, torch.cat(rows, dim=0).numpy())


def sample_images(dataset: ColorizationDataset, n: int = 4) -> list[torch.Tensor]:
    """``n`` training images spread over the pool, for the sample grids."""
    return dataset.images[:: max(1, len(dataset) // n)][:n]


def progress_columns(label: str) -> tuple:
    return (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def open_csv_log(path: Path, header: list[str], resume: bool):
    """(file, writer) for a run's CSV log: appended to on resume, started afresh otherwise."""
    new = not (resume and path.exists())
    f = open(path, "w" if new else "a", newline="")
    writer = csv.writer(f)
    if new:
        writer.writerow(header)
    return f, writer


def load_run_state(state_path: Path, cfg, map_location) -> dict:
    """A run's saved state, refused if missing or saved under another configuration."""
    if not state_path.exists():
        raise FileNotFoundError(f"{state_path}: nothing to resume from")
    state = torch.load(state_path, map_location=map_location, weights_only=False)  # our own file: RNG states
    if state["config"] != dataclasses.asdict(cfg):
        raise ValueError(f"{state_path}: saved with a different configuration; start a new --out")
    return state


def train(cfg: TrainConfig, resume: bool = False, log=print, stop_after: int | None = None) -> Path:
    """Train ``cfg.model`` on ``cfg.data``; returns the path of the final weights-only checkpoint.

    ``stop_after`` ends this run after that many steps (state saved, resumable with ``resume=True``),
    for time-boxed sessions; the schedule still follows ``cfg.steps``.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    dataset = ColorizationDataset(cfg.data, size=cfg.size, train=True, log=log)
    log(f"training on {len(dataset)} images from {cfg.data}")
    model = create_model(cfg.model, **cfg.model_args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    class_weights = class_weights_for(dataset, model.bin_centers, cfg.rebalance) if cfg.loss == "bins" else None

    step = 0
    state_path = out / STATE_FILE
    if resume:
        state = load_run_state(state_path, cfg, "cpu")
        model.load_state_dict(state["model"]["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        set_rng_state(state["rng"])
        log(f"resumed from step {step}")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))

    def save_state() -> None:
        atomic_torch_save(
            {
                "config": dataclasses.asdict(cfg),
                "model": model_state(model),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "rng": rng_state(),
            },
            state_path,
        )

    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    samples = sample_images(dataset)
    csv_file, writer = open_csv_log(out / "log.csv", ["step", "loss", "l1", "lr", "seconds"], resume)
    model.train()
    last_step = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    t0 = time.perf_counter()
    running: list[tuple[float, float]] = []
    with Progress(*progress_columns("train")) as progress:
        task = progress.add_task("train", total=cfg.steps, completed=step, info="")
        while step < last_step:
            for l_norm, ab_norm in loader:
                if step >= last_step:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg)
                loss, l1, _ = supervised_loss(model, l_norm, ab_norm, cfg.loss, class_weights, cfg.l1_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                running.append((loss.item(), l1.item()))
                if step % cfg.log_every == 0 or step == cfg.steps:
                    mean_loss, mean_l1 = np.mean(running, axis=0)
                    running.clear()
                    writer.writerow(
                        [
                            step,
                            f"{mean_loss:.5f}",
                            f"{mean_l1:.5f}",
                            f"{lr_at(step - 1, cfg):.6f}",
                            f"{time.perf_counter() - t0:.1f}",
                        ]
                    )
                    csv_file.flush()
                    progress.update(task, info=f"loss {mean_loss:.4f} l1 {mean_l1:.4f}")
                if step % cfg.ckpt_every == 0:
                    save_state()
                if step % cfg.sample_every == 0 or step == cfg.steps:
                    model.eval()
                    sample_grid(model, samples, out / f"samples_{step:06d}.png", size=cfg.size)
                    model.train()
                progress.update(task, completed=step)
    csv_file.close()
    save_state()
    if step < cfg.steps:
        log(f"stopped at step {step} of {cfg.steps}; continue with --resume")
        return state_path
    model.eval()
    final = out / "model.pt"
    save_model(model, final, half=False, train_config=dataclasses.asdict(cfg), steps=step)
    log(f"done: {step} steps in {time.perf_counter() - t0:.0f} s; weights at {final}")
    return final
