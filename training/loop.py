"""The one training loop, in plain sight: every method (the student recipe, the GAN's two stages,
distillation, fine-tuning after pruning, quantization-aware training) calls :func:`run_stage`.

Per batch: the optional teacher's logits (frozen, no gradient), the objective's loss, one optimiser
step, the optional EMA update. Around it, written once: device and DistributedDataParallel (under
``torchrun``: NCCL on GPUs, gloo on CPUs, a DistributedSampler), bf16 autocast on CUDA, the learning
rate schedule, the CSV/TensorBoard/W&B log, PNG sample grids, validation with keep-best and early
stopping, and atomic checkpoints of everything (weights, optimiser, EMA, objective state, RNG, step)
so a run killed with SIGKILL continues exactly with ``resume=True``. A stop asked for while it runs
(:data:`STOP`, set by the command line on SIGINT/SIGTERM/SIGHUP) ends the stage after the current step
with its state saved, so nothing since the last periodic checkpoint is lost.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edge_colorizer.checkpoint import atomic_torch_save, read_torch_file
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.data.dataset import training_pair
from edge_colorizer.io import write_image
from edge_colorizer.lab import lab_to_rgb
from training.config import GANSettings, Stage, TrainConfig
from training.objectives import LOG_TERMS, Batch, Objective, Trainee

LOG_FILE = "log.csv"
VAL_FILE = "val.csv"
SAMPLES_PREFIX = "samples_"  # the sample grids: samples_<stage>_<step>.png
# set from outside (a signal handler) to end the running stage after its current step, state saved
STOP = threading.Event()


def _ignore_stop_signals(worker_id: int) -> None:
    """Loader processes leave SIGINT/SIGTERM/SIGHUP to the main process, which stops after its step and
    then shuts them down (a worker killed by Ctrl-C mid-batch would fail the loader before the save; a
    forked one would otherwise run the parent's handler). A stuck worker is still ended: the loader's
    shutdown kills what does not exit, and a worker exits when the main process is gone."""
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)


def state_file(stage: str) -> str:
    return f"state_{stage}.pt"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # a state loaded onto the GPU (map_location) comes back


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(step: int, base: float, total: int, warmup: int = 0, floor: float = 0.05) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to ``floor * base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def lr_at(step: int, stage: Stage, total: int | None = None) -> float:
    """The learning rate of ``step``; ``total`` is the stage's length when a time budget fixed it."""
    if stage.schedule == "constant":
        return stage.lr * min(1.0, (step + 1) / stage.warmup) if stage.warmup else stage.lr
    return cosine_lr(step, stage.lr, total or stage.steps, stage.warmup)


clock = time.perf_counter  # the loop's wall clock (a test replaces it)
PROBE_SKIP, PROBE_STEPS = 3, 12  # a time budget: steps ignored (start-up), then steps timed
BUDGET_SHARE = 0.9  # of the time left after the probe, for steps (validation, samples, checkpoints)


def steps_for_budget(stage: Stage, step: int, elapsed: float, seconds_per_step: float) -> int:
    """The stage's length once its speed is known: what fits in ``stage.minutes``, at most ``stage.steps``."""
    left = max(0.0, stage.minutes * 60 - elapsed)
    return max(step + 1, min(stage.steps, step + int(BUDGET_SHARE * left / max(seconds_per_step, 1e-6))))


def make_optimizer(params, stage: Stage) -> torch.optim.Optimizer:
    if stage.optimizer == "adam":
        return torch.optim.Adam(params, lr=stage.lr, betas=stage.betas, weight_decay=stage.weight_decay)
    return torch.optim.AdamW(params, lr=stage.lr, betas=stage.betas, weight_decay=stage.weight_decay)


def progress_columns(label: str) -> tuple:
    return (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def sample_grid(model: nn.Module, images: list[torch.Tensor], path: Path, size: int) -> None:
    """PNG grid, one row per image (centre square): gray input | prediction | ground truth."""
    colorizer = ColorizerModule(model, size=size).eval()
    device = colorizer.device
    rows = []
    with torch.no_grad():
        for img in images:
            _, h, w = img.shape
            side = min(h, w)
            img = img[:, (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
            rgb = img.permute(1, 2, 0)[None].to(device)  # (1, side, side, 3) uint8
            lab = colorizer.predict_lab(rgb)  # one network pass serves both panels
            gray_rgb = (lab[:, :1] / 100.0 * 255).round().clamp(0, 255).to(torch.uint8)[0, 0]
            pred = (lab_to_rgb(lab) * 255.0).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
            rows.append(torch.cat((gray_rgb[..., None].expand(-1, -1, 3), pred, rgb[0]), dim=1).cpu())
    write_image(path, torch.cat(rows, dim=0).numpy())


def sample_images(dataset, n: int = 4) -> list[torch.Tensor]:
    """``n`` training images spread over the pool, for the sample grids."""
    return dataset.images[:: max(1, len(dataset) // n)][:n]


def dist_info() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def check_runnable(cfg: TrainConfig, images: int | None = None) -> None:
    """Raise a one-line ValueError for what would stop the run at its first step: a CUDA device asked
    for where there is none, fewer ``images`` than one batch per process."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA device")
    world = dist_info()[1]
    if images is not None and images // world < cfg.batch_size:
        each = f" for each of {world} processes" if world > 1 else ""
        raise ValueError(f"{cfg.data}: {images} images are fewer than one batch of {cfg.batch_size}{each}")


def resolve_device(cfg: TrainConfig) -> torch.device:
    """The run's device; under torchrun, this rank's GPU. Starts the process group when distributed."""
    rank, world = dist_info()
    check_runnable(cfg)
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled indices, one permutation per epoch drawn from ``seed + epoch``, this rank's share of
    them, starting ``skip`` batches in: a run resumed mid-epoch sees exactly the batches it would have."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.per_rank = n // world  # every rank the same count (DDP needs equal batches)
        self.batches = self.per_rank // batch_size
        self.epoch, self.skip = 0, 0

    def position(self, step: int) -> None:
        self.epoch, self.skip = divmod(step, self.batches)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        mine = torch.randperm(self.n, generator=g)[self.rank :: self.world][: self.per_rank]
        yield from mine[self.skip * self.batch_size : self.batches * self.batch_size].tolist()

    def __len__(self) -> int:
        return (self.batches - self.skip) * self.batch_size


class _Logits(nn.Module):
    """DDP wraps this: its forward is the colorizer's raw head output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.model.logits(l_norm)


# where and how a run executes, not what it computes: a run may resume with other values (another machine's
# thread count, a moved folder, the GPU after the CPU, more loader processes, other logging)
EXECUTION_FIELDS = frozenset(
    {
        "out",
        "threads",
        "workers",
        "device",
        "compile",
        "log_every",
        "ckpt_every",
        "sample_every",
        "tensorboard",
        "wandb",
    }
)


def _with_defaults(cls, saved: dict) -> dict:
    """``saved`` (a dataclass written as a dict, maybe by an older version) over ``cls``'s defaults."""
    defaults = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return {**defaults, **saved}


def recipe_fields(cfg: TrainConfig | dict) -> dict:
    """The configuration that decides the result: everything but :data:`EXECUTION_FIELDS`. A saved
    configuration (a dict) written before a setting existed takes that setting's default (also inside
    its adversarial settings)."""
    if isinstance(cfg, dict):
        d = _with_defaults(TrainConfig, cfg)
        if d.get("gan") is not None:
            d["gan"] = _with_defaults(GANSettings, d["gan"])
    else:
        d = dataclasses.asdict(cfg)
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def load_run_state(path: Path, cfg: TrainConfig, stage: Stage, map_location, mmap: bool = False) -> dict:
    """A stage's saved state, refused if saved under another recipe (execution settings may differ);
    ``mmap``: its tensors are read only when used (a check of the settings reads none)."""
    # our own file (RNG states, so not weights_only); damaged or foreign ones are one line naming it
    state = read_torch_file(path, "training state", weights_only=False, map_location=map_location, mmap=mmap)
    if not isinstance(state, dict) or not {"config", "stage", "model", "step"} <= set(state):
        raise ValueError(f"{path}: not a training state (a run folder's {path.name} holds config, stage, model)")
    saved, current = recipe_fields(state["config"]), recipe_fields(cfg)
    if saved != current or _with_defaults(Stage, state["stage"]) != dataclasses.asdict(stage):
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        what = ", ".join(changed) or "the stage"
        raise ValueError(
            f"{path}: saved with a different configuration ({what}); resume with the options in "
            f"{path.parent / 'config.json'}, or start a new --out"
        )
    return state


def read_stage_state(cfg: TrainConfig, stage: Stage) -> dict | None:
    path = Path(cfg.out) / state_file(stage.name)
    return load_run_state(path, cfg, stage, "cpu") if path.exists() else None


@dataclass
class StageResult:
    model: nn.Module  # what the stage delivers: the best validated weights, else the EMA, else the last
    step: int
    finished: bool
    best_score: float | None = None
    steps_run: int = 0  # steps taken by this call (the rest were resumed)


def _append_csv(path: Path, header: list[str], row: list) -> None:
    """Append ``row`` under ``header``; to a file begun with other columns (a run resumed after this
    version added a column), by that file's own header, a column it lacks left out."""
    new = not path.exists()
    if not new:
        with open(path, newline="") as f:
            existing = next(csv.reader(f), header)
        if existing != header:
            values = dict(zip(header, row, strict=True))
            row = [values.get(name, "") for name in existing]
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerow(row)


def run_stage(
    model: nn.Module,
    objective: Objective,
    cfg: TrainConfig,
    stage: Stage,
    dataset: torch.utils.data.Dataset,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
    teacher: nn.Module | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
) -> StageResult:
    """Train ``model`` for ``stage.steps`` steps of ``objective`` on ``dataset`` (one call of the loop).

    ``validate(model) -> {"lpips": ..., ...}`` scores weights (lower LPIPS is better) every
    ``cfg.val_every`` steps and at the end; the best weights are what the stage delivers.
    ``stop_after`` ends this call after that many steps (state saved; continue with ``resume=True``).
    """
    rank, world = dist_info()
    distributed = world > 1
    main_process = rank == 0
    if not main_process:
        log = lambda *_: None  # noqa: E731
    device = resolve_device(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed + rank)  # the crops differ between ranks; torch's RNG (weights) does not
    np.random.seed(cfg.seed + rank)

    model.to(device).train()
    # the teacher's forward only: channels-last runs its depthwise convolutions ~4x faster on the CPU
    # (measured); on a GPU (bf16 autocast) jobs with a channels-last teacher crawled (H200, torch 2.11),
    # so there it keeps the default layout
    teacher_layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if teacher is not None:
        teacher.to(device, memory_format=teacher_layout).eval().requires_grad_(False)
    optimizer = make_optimizer(model.parameters(), stage)
    ema = None
    if cfg.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True
        )
    ids = [device] if device.type == "cuda" else None

    def wrap(module: nn.Module) -> nn.Module:
        return nn.parallel.DistributedDataParallel(module, device_ids=ids) if distributed else module

    objective.setup(device, wrap)
    step, best, best_score, bad_rounds = 0, None, None, 0
    total, sized = stage.steps, not stage.minutes  # a time budget fixes ``total`` after the first steps
    state_path = out / state_file(stage.name)
    if resume and state_path.exists():
        state = load_run_state(state_path, cfg, stage, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        objective.load_state_dict(state["objective"])
        step, best, best_score, bad_rounds = state["step"], state["best"], state["best_score"], state["bad_rounds"]
        total, sized = state.get("total", total), state.get("sized", sized)
        set_rng_state(state["rng"][rank])  # one RNG state per rank
        log(f"{stage.name}: resumed from step {step}")
        if state.get("finished"):
            model.load_state_dict(state["final"])
            return StageResult(model.eval(), step, True, best_score, 0)

    logits_fn = wrap(_Logits(model))
    teacher_logits = teacher.logits if teacher is not None else None
    if cfg.compile:
        # the compiled callables only run the forward: the plain modules keep the weights, so the EMA,
        # validation, samples and checkpoints see the same names and values as without compiling
        logits_fn = torch.compile(logits_fn)
        if teacher_logits is not None:
            teacher_logits = torch.compile(teacher_logits)
    trainee = Trainee(logits=logits_fn, decode=model.decode, bin_centers=getattr(model, "bin_centers", None))
    check_runnable(cfg, len(dataset))
    sampler = EpochSampler(len(dataset), cfg.batch_size, cfg.seed, rank, world)
    # its own generator: starting an epoch must not draw from the global RNG that the state restores
    # with workers, each has its own RNG: a resumed run continues at the right batch, with other crops
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=True,
        generator=torch.Generator(),
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_stop_signals if cfg.workers > 0 else None,
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and cfg.amp)

    def eval_model() -> nn.Module:
        return ema.module if ema is not None else model

    def sync_buffers() -> None:
        # DDP broadcasts rank 0's buffers (BatchNorm statistics) before each forward; after the last
        # forward, do the same once more so every rank holds the model rank 0 saves
        if distributed:
            for buf in model.buffers():
                dist.broadcast(buf, src=0)

    def save_state(finished: bool = False, final: nn.Module | None = None) -> None:
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
                "stage": dataclasses.asdict(stage),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "objective": objective.state_dict(),
                "step": step,
                "best": best,
                "best_score": best_score,
                "bad_rounds": bad_rounds,
                "total": total,
                "sized": sized,
                "rng": rngs,
                "finished": finished,
                "final": final.state_dict() if final is not None else None,
            },
            state_path,
        )

    def stop_requested() -> bool:
        """:data:`STOP` on any rank stops every rank at the same step (their collectives stay matched)."""
        flag = STOP.is_set()
        if distributed:
            t = torch.tensor([int(flag)], device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
        return flag

    def run_validation() -> bool:
        """Score the weights; keep them if best. True when patience is exhausted."""
        nonlocal best, best_score, bad_rounds
        if validate is None:
            return False
        sync_buffers()
        stop = False
        if main_process:
            candidate = eval_model().eval()
            with torch.no_grad():
                scores = validate(candidate)
            candidate.train()
            improved = best_score is None or scores["lpips"] < best_score
            if improved:
                best_score, bad_rounds = scores["lpips"], 0
                best = {k: v.detach().cpu().clone() for k, v in candidate.state_dict().items()}
            else:
                bad_rounds += 1
            _append_csv(
                out / VAL_FILE,
                ["stage", "step", *scores, "best"],
                [stage.name, step, *(f"{v:.5f}" for v in scores.values()), int(improved)],
            )
            log(f"{stage.name} step {step}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            stop = bool(cfg.patience) and bad_rounds >= cfg.patience
        if distributed:
            flag = torch.tensor([int(stop)], device=device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    tb = None
    if main_process and cfg.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            log("tensorboard is not installed: logging to log.csv only")
    if main_process and cfg.wandb:
        try:
            import wandb

            wandb.init(project="edge-colorizer", config=dataclasses.asdict(cfg), dir=str(out), resume="allow")
        except ImportError:
            log("wandb was asked for but is not installed: logging to log.csv only")
    samples = sample_images(dataset)
    last_step = total if stop_after is None else min(total, step + stop_after)
    running: dict[str, list[float]] = {}
    first_step = step
    t0 = clock()
    t_probe = t0
    stopped_early = False
    with Progress(*progress_columns(stage.name), disable=not main_process) as progress:
        task = progress.add_task(stage.name, total=total, completed=step, info="")
        while step < last_step and not stopped_early:
            sampler.position(step)
            for rgb, jitter in loader:
                batch = Batch(*training_pair(rgb.to(device, non_blocking=True), jitter.to(device)))
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, stage, total)
                with autocast:
                    if teacher is not None:
                        with torch.no_grad():
                            l_in = batch.l_norm.contiguous(memory_format=teacher_layout)
                            batch.teacher_logits = teacher_logits(l_in).contiguous()
                    loss, terms = objective(trainee, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                if not sized and step - first_step == PROBE_SKIP:
                    t_probe = clock()
                elif not sized and step - first_step == PROBE_SKIP + PROBE_STEPS:
                    now = clock()
                    rate = (now - t_probe) / PROBE_STEPS
                    total = steps_for_budget(stage, step, now - t0, rate)
                    if distributed:  # every rank runs rank 0's count
                        count = torch.tensor([total], device=device)
                        dist.broadcast(count, src=0)
                        total = int(count.item())
                    sized = True
                    last_step = total if stop_after is None else min(total, last_step)
                    progress.update(task, total=total)
                    log(f"{stage.name}: {total} steps fit in {stage.minutes:g} min ({rate:.3f} s/step)")
                for k, v in terms.items():
                    running.setdefault(k, []).append(float(v.detach()))
                if main_process and (step % cfg.log_every == 0 or step == total):
                    means = {k: float(np.mean(v)) for k, v in running.items()}
                    running.clear()
                    _append_csv(
                        out / LOG_FILE,
                        ["stage", "step", *LOG_TERMS, "lr", "seconds"],
                        [
                            stage.name,
                            step,
                            *(f"{means[t]:.5f}" if t in means else "" for t in LOG_TERMS),
                            f"{lr_at(step - 1, stage, total):.6g}",
                            f"{clock() - t0:.1f}",
                        ],
                    )
                    if tb is not None:
                        for name, v in means.items():
                            tb.add_scalar(f"{stage.name}/{name}", v, step)
                    progress.update(task, info=" ".join(f"{k} {v:.3f}" for k, v in means.items()))
                if main_process and (step % cfg.sample_every == 0 or step == total):
                    grid = out / f"{SAMPLES_PREFIX}{stage.name}_{step:06d}.png"
                    sample_grid(eval_model().eval(), samples, grid, cfg.size)
                    eval_model().train()
                if cfg.val_every and step % cfg.val_every == 0 and step < total:
                    stopped_early = run_validation()
                if step % cfg.ckpt_every == 0:
                    save_state()
                progress.update(task, completed=step)
                if stopped_early:
                    log(f"{stage.name}: stopped early at step {step}: no better validation in {cfg.patience} rounds")
                if stop_requested():
                    last_step = step
                if stopped_early or step >= last_step:
                    break  # before the loader draws the next batch's random crops: the saved RNG state is exact
    if tb is not None:
        tb.close()
    if step < total and not stopped_early:
        save_state()
        log(f"{stage.name}: stopped at step {step} of {total}; continue with --resume")
        return StageResult(eval_model().eval(), step, False, best_score, step - first_step)
    if not stopped_early:
        run_validation()  # the end of the stage is always a candidate (the loop skips it there)
    final = copy.deepcopy(eval_model()).eval()
    if best is not None:
        final.load_state_dict(best)
    final.to(device)
    save_state(finished=True, final=final)
    log(f"{stage.name}: {step} steps in {clock() - t0:.0f} s")
    return StageResult(final, step, True, best_score, step - first_step)
