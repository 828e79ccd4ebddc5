"""A training run: build the model, the data and each stage's objective, then call the shared loop.

``train(cfg)`` serves every recipe: students (one supervised stage), the GAN teacher (supervised
pre-training, then the adversarial stage), distillation (a ``teacher`` in the config) and, with a
``model`` passed in, fine-tuning of a pruned network. The result is ``out/model.pt``, a checkpoint
that rebuilds its model (pruned or not) and records the network input size it runs at.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from edge_colorizer.checkpoint import load_checkpoint, load_model, read_torch_file, save_model
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.data.dataset import ColorizationDataset
from edge_colorizer.io import check_outside, check_writable_folder, one_line
from edge_colorizer.models import create_model
from training.config import TrainConfig
from training.loop import (
    LOG_FILE,
    SAMPLES_PREFIX,
    VAL_FILE,
    StageResult,
    check_runnable,
    dist_info,
    load_run_state,
    run_stage,
    seed_everything,
    state_file,
)
from training.losses import class_weights_for
from training.objectives import Adversarial, Objective, Supervised

RUN_FILE = "model.pt"


@dataclass
class RunResult:
    path: Path  # out/model.pt when finished, else the state file to resume from
    model: nn.Module
    finished: bool
    seconds: float
    steps: int = 0  # steps taken, all stages (a time budget decides them)


def check_validation_photos(val: str | Path, lpips=None, max_side: int = 256, log=print) -> None:
    """Score the gray baseline on the validation photos, as a run will: each photo that cannot be scored
    gets one ``skip`` line on ``log``, and a folder with none raises ValueError before any work."""
    import torch

    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.metrics.lpips import LPIPS

    with torch.random.fork_rng(devices=[]):  # a run's random stream is the same with or without it
        lpips = lpips or LPIPS("alex")
        gray = evaluate({}, val, max_side=max_side, lpips=lpips, on_skip=lambda m: log(f"skip {m}"))[0]
    log(f"validation on {gray.images} photos from {val} (gray: LPIPS {gray.lpips:.4f}, PSNR {gray.psnr_db:.2f} dB)")


def make_validator(val: str | Path, size: int, max_side: int = 256, log=print, check: bool = True):
    """``validate(model) -> {"lpips", "psnr", "cf_ratio"}`` on a folder of validation photos.

    With ``check`` (one process of a distributed run does it) the photos are checked now
    (:func:`check_validation_photos`)."""
    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.metrics.lpips import LPIPS

    lpips = LPIPS("alex")
    if check:
        check_validation_photos(val, lpips, max_side, log)

    def validate(model: nn.Module) -> dict[str, float]:
        r = evaluate({"m": ColorizerModule(model, size=size)}, val, max_side=max_side, include_gray=False, lpips=lpips)
        return {"lpips": r[0].lpips, "psnr": r[0].psnr_db, "cf_ratio": r[0].colorfulness_ratio}

    return validate


def check_run_folder(cfg: TrainConfig, stages: list, resume: bool) -> None:
    """Raise a one-line error, before any work, for a run folder the run cannot use: not writable, inside
    the photos it reads, nothing to resume, or an unfinished run a fresh start would throw away."""
    out = Path(cfg.out)
    check_writable_folder(out)
    for folder, option in ((cfg.data, "--data"), (cfg.val, "--val"), (cfg.cutouts, "--cutouts")):
        check_outside(out, folder, option)  # its sample grids would become training or validation photos
    mine = [out / state_file(s.name) for s in stages]
    if resume and not any(p.exists() for p in mine):
        others = sorted(p.name for p in out.glob("state_*.pt")) if out.is_dir() else []
        if others:
            raise FileNotFoundError(
                f"{out}: holds a run of another recipe ({', '.join(others)}; this one saves {mine[0].name})"
            )
        raise FileNotFoundError(f"{out}: nothing to resume from (no {mine[0].name})")
    if resume:  # a state saved under other settings is refused before the photos are loaded
        for stage, path in zip(stages, mine, strict=True):
            if path.exists():
                load_run_state(path, cfg, stage, "cpu", mmap=True)
    if not resume and dist_info()[0] == 0:
        refuse_unfinished(out, stages=mine)


def refuse_unfinished(out: Path, folder: Path | None = None, stages: list[Path] = ()) -> None:
    """Raise a one-line ValueError if ``folder`` (``out`` or a run folder under it) holds an unfinished
    run (:func:`unfinished_state`; ``stages``: the state files of the recipe about to start there)."""
    unfinished = unfinished_state(folder or out, stages)
    if unfinished is not None:
        whose = " of another recipe" if stages and unfinished not in stages else ""
        raise ValueError(
            f"{out}: holds an unfinished run{whose} ({unfinished.relative_to(out)}); continue it with --resume, "
            "or choose another --out"
        )


def unfinished_state(out: Path, stages: list[Path] = ()) -> Path | None:
    """The state file of an unfinished run in ``out`` (of any recipe), which a fresh run there would
    throw away with its log; None if there is none, or only a finished run's (its ``model.pt`` written,
    or every one of ``stages``, the state files of the recipe at hand, saved finished)."""
    readable = []
    for path in sorted(out.glob("state_*.pt"), key=lambda p: p.stat().st_mtime) if out.is_dir() else []:
        try:
            state = read_torch_file(path, "training state", weights_only=False, mmap=True)
        except (ValueError, OSError):
            continue  # damaged: nothing a resume could use, so nothing a fresh run loses
        if not (isinstance(state, dict) and state.get("finished")):
            return path
        readable.append(path)
    if readable and not (out / RUN_FILE).exists() and not (stages and all(p in readable for p in stages)):
        return readable[-1]  # stopped between two stages
    return None


def load_teacher(name: str) -> nn.Module:
    from edge_colorizer.inference import resolve_model_path

    teacher = load_model(resolve_model_path(name))
    if getattr(teacher, "head_type", None) != "bins":
        raise ValueError(f"teacher {name!r} has no ab-bins head: there is no distribution to distil")
    return teacher


def _objective(cfg: TrainConfig, stage: str, class_weights, perceptual: nn.Module | None) -> Objective:
    sup = Supervised(
        cfg.loss,
        class_weights,
        cfg.l1_weight,
        cfg.kd_weight if cfg.teacher else 0.0,
        cfg.kd_temperature,
        perceptual,
        cfg.perceptual,
    )
    if stage != "gan":
        return sup
    gan = cfg.gan
    disc = create_model("patchgan", **gan.discriminator_args)
    return Adversarial(sup, disc, gan.lr_d, gan.betas, gan.gan_loss, gan.gan_lambda)


def load_init(model: nn.Module, init: str) -> None:
    """``model`` (built from the recipe, so it decodes as the recipe trains: its temperature, no chroma
    gain) takes the weights of ``init``, a bundled name or checkpoint; a one-line ValueError if they do
    not fit it."""
    from edge_colorizer.inference import resolve_model_path

    state = load_checkpoint(resolve_model_path(init))["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else one_line(exc)
        first = first.strip() if len(first.strip()) <= 200 else first.strip()[:200] + "..."
        raise ValueError(f"--init {init}: its weights do not fit the recipe's model ({first})") from None


def train(
    cfg: TrainConfig,
    resume: bool = False,
    log=print,
    stop_after: int | None = None,
    model: nn.Module | None = None,
    extra: dict | None = None,
) -> RunResult:
    """Run every stage of ``cfg``; ``model`` (e.g. a pruned network) replaces ``create_model(cfg.model)``.

    ``stop_after`` ends this call after that many steps in all (resumable); ``extra`` is stored in the
    final checkpoint beside the weights (a compression card, say).
    """
    out = Path(cfg.out)
    stages = cfg.stages()
    rank, _ = dist_info()
    check_run_folder(cfg, stages, resume)
    check_runnable(cfg)
    # same initial weights on every rank; the class weights' crops draw from python's RNG
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    dataset = ColorizationDataset(
        cfg.data,
        size=cfg.size,
        train=True,
        log=log,
        fraction=cfg.subset,
        cutouts=cfg.cutouts or None,
        cutout_prob=cfg.cutout_prob,
        full_frame=cfg.full_frame,
    )
    check_runnable(cfg, len(dataset))
    share = f" ({cfg.subset:.0%} subset)" if cfg.subset < 1 else ""
    pasted = f", {len(dataset.paste)} cut-outs pasted on {cfg.cutout_prob:.0%} of crops" if dataset.paste else ""
    whole = f", {cfg.full_frame:.0%} of samples whole photos" if cfg.full_frame else ""
    log(f"training on {len(dataset)} images from {cfg.data}{share}{pasted}{whole}")
    if model is None and cfg.init:
        # the weights are replaced: their random draws would only shift the crops the seed gives
        with torch.random.fork_rng(devices=[]):
            try:  # nor is an ImageNet file read (or fetched) for an encoder whose weights are replaced
                model = create_model(cfg.model, **{**cfg.model_args, "pretrained": False})
            except TypeError:  # a model without pretrained weights
                model = create_model(cfg.model, **cfg.model_args)
        load_init(model, cfg.init)
    elif model is None:
        model = create_model(cfg.model, **cfg.model_args)
    teacher = load_teacher(cfg.teacher) if cfg.teacher else None
    class_weights = None
    if cfg.loss == "bins":
        class_weights = class_weights_for(dataset, model.bin_centers.cpu(), cfg.rebalance)
    input_size = cfg.input_size or cfg.size
    validate = make_validator(cfg.val, input_size, log=log, check=rank == 0) if cfg.val else None
    perceptual = None
    if cfg.perceptual:  # its weights are read before the run folder is made
        from edge_colorizer.metrics.lpips import LPIPS

        perceptual = LPIPS(cfg.perceptual_net)
    # the run folder is made (or cleared) only now: a run refused above leaves nothing behind
    out.mkdir(parents=True, exist_ok=True)
    if not resume and rank == 0:
        # a fresh run in a used folder: the old run's states, logs and samples must not mix with this one's
        for name in [state_file(s.name) for s in stages] + [LOG_FILE, VAL_FILE]:
            (out / name).unlink(missing_ok=True)
        for old in out.glob(f"{SAMPLES_PREFIX}*.png"):
            old.unlink(missing_ok=True)
    if rank == 0:
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    budget = stop_after
    result: StageResult | None = None
    steps = 0
    for stage in stages:
        result = run_stage(
            model,
            _objective(cfg, stage.name, class_weights, perceptual),
            cfg,
            stage,
            dataset,
            resume=resume,
            log=log,
            stop_after=budget,
            teacher=teacher,
            validate=validate,
        )
        model = result.model
        steps += result.step
        if not result.finished:
            return RunResult(out / state_file(stage.name), model, False, time.perf_counter() - t0, steps)
        if budget is not None:
            budget -= result.steps_run
            if budget <= 0 and stage is not stages[-1]:
                log(f"stopped after stage {stage.name}; continue with --resume")
                return RunResult(out / state_file(stage.name), model, False, time.perf_counter() - t0, steps)
    final = out / RUN_FILE
    if rank == 0:
        model.cpu().eval()
        info = {"train_config": dataclasses.asdict(cfg), "steps": steps}
        if result is not None and result.best_score is not None:
            info["val_lpips"] = result.best_score
        save_model(model, final, input_size=input_size, **info, **(extra or {}))
        log(f"done: weights at {final}")
    return RunResult(final, model, True, time.perf_counter() - t0, steps)
