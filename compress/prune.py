"""Structured channel pruning (torch-pruning's dependency graph) with fine-tuning through the shared loop.

Only the network inside the colorizer is pruned; its L input and the ab head's outputs are kept (the
head is ignored, so the 265 bins stay). Pruning is iterative: each round removes a share of the
channels, then fine-tunes (by default distilling from the unpruned parent, since the probe found
that fine-tuning is the whole game). Each round's pruned network is saved before it is fine-tuned,
so a run killed at any point continues with ``resume=True``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from compress.card import hardware, validation_table, write_card_markdown
from edge_colorizer.checkpoint import load_checkpoint, load_model, model_from_checkpoint, save_model
from edge_colorizer.colorizer import DEFAULT_SIZE
from edge_colorizer.inference import resolve_model_path
from edge_colorizer.io import file_sha256, write_bytes_atomic
from edge_colorizer.models.profile import count_macs, count_params
from training.config import TrainConfig
from training.train import train

IMPORTANCES = ("group_norm", "magnitude")


@dataclass(frozen=True)
class PruneConfig:
    parent: str  # bundled name or checkpoint of the network to prune
    out: str
    finetune: TrainConfig  # data, steps per round, lr, ... (model fields are taken from the parent)
    ratio: float = 0.5  # share of each layer's channels removed in all
    target_gmacs: float = 0.0  # instead of ratio: prune until the network needs at most this many GMACs
    rounds: int = 2  # prune -> fine-tune rounds
    importance: str = "group_norm"
    round_to: int = 0  # keep channel counts multiples of this (0: no rounding)
    distill: bool = True  # fine-tune with the parent as teacher
    teacher: str = ""  # another teacher for the fine-tuning (default: the parent)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 < self.ratio < 1.0 and not self.target_gmacs:
            raise ValueError(f"ratio must be in (0, 1), got {self.ratio}")
        if self.target_gmacs < 0 or self.rounds < 1:
            raise ValueError("target_gmacs must be >= 0 and rounds >= 1")
        if self.importance not in IMPORTANCES:
            raise ValueError(f"importance must be one of {IMPORTANCES}, got {self.importance!r}")
        if self.round_to < 0:
            raise ValueError("round_to must be >= 0")


def _importance(kind: str):
    import torch_pruning as tp

    if kind == "magnitude":
        return tp.importance.MagnitudeImportance(p=1, group_reduction="first")  # the layer's own L1 norm
    return tp.importance.GroupMagnitudeImportance(p=2)  # L2 norm over every coupled layer


def prune_channels(net: nn.Module, ratio: float, importance: str = "group_norm", round_to: int = 0) -> nn.Module:
    """Remove ``ratio`` of the channels of every prunable layer of ``net`` in place; returns ``net``.

    The ab head is ignored (its bins stay); torch-pruning's dependency graph keeps skips, concatenations
    and depthwise groups consistent. The result is marked ``pruned`` so checkpoints store its plan.
    """
    try:
        import torch_pruning as tp
    except ImportError:
        raise ImportError("pruning needs torch-pruning: pip install 'edge-colorizer[compress]'") from None
    if ratio <= 0:
        return net
    was_training = net.training
    net.eval()
    example = torch.zeros(1, 1, 64, 64, device=next(net.parameters()).device)
    pruner = tp.pruner.MetaPruner(
        net,
        example,
        importance=_importance(importance),
        pruning_ratio=ratio,
        ignored_layers=[net.head],
        round_to=round_to or None,
        forward_fn=lambda m, x: m.logits(x),
    )
    pruner.step()
    net.train(was_training)
    net.pruned = True
    return net


def ratio_for_gmacs(net: nn.Module, target_gmacs: float, size: int, importance: str, round_to: int) -> float:
    """The channel ratio whose pruning brings ``net`` to at most ``target_gmacs`` (bisection on copies)."""
    if count_macs(net, size) / 1e9 <= target_gmacs:
        raise ValueError(f"the network already needs {count_macs(net, size) / 1e9:.3f} GMACs <= {target_gmacs}")
    lo, hi = 0.0, 0.95
    for _ in range(6):  # to 0.015 of the ratio
        mid = (lo + hi) / 2
        trial = prune_channels(copy.deepcopy(net), mid, importance, round_to)
        if count_macs(trial, size) / 1e9 <= target_gmacs:
            hi = mid
        else:
            lo = mid
    return hi


def round_ratios(total: float, rounds: int) -> list[float]:
    """Per-round shares of the *remaining* channels so that the kept fraction falls linearly to 1 - total."""
    keep = [1.0 - total * k / rounds for k in range(rounds + 1)]
    return [1.0 - keep[k] / keep[k - 1] for k in range(1, rounds + 1)]


@dataclass
class PruneResult:
    path: Path
    model: nn.Module | None
    finished: bool
    card: dict


SETTINGS_FILE = "prune.json"  # what decides the rounds' pruned networks: a resume must not change it


def _same_settings(path: Path, resume: bool, **settings) -> None:
    """Record the run's pruning settings (a fresh run), or refuse a resume under other ones: its saved
    rounds were pruned with those (a run saved before this file existed is taken as it is)."""
    if resume and path.exists():
        saved = json.loads(path.read_text())
        changed = sorted(k for k in settings if saved.get(k) != settings[k])
        if changed:
            what = ", ".join("parent model" if k == "parent" else k.replace("_", "-") for k in changed)
            raise ValueError(f"{path.parent}: its rounds were pruned with another {what}; resume with the same options")
        return
    write_bytes_atomic(path, json.dumps(settings, indent=1).encode())


def prune(cfg: PruneConfig, resume: bool = False, log=print, stop_after: int | None = None) -> PruneResult:
    """Prune ``cfg.parent`` in rounds, fine-tuning after each; writes ``out/model.pt`` and ``out/CARD.md``."""
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    parent_path = resolve_model_path(cfg.parent)
    parent = load_model(parent_path)
    size = getattr(parent, "input_size", DEFAULT_SIZE)
    ratio = cfg.ratio
    if cfg.target_gmacs:
        ratio = ratio_for_gmacs(parent, cfg.target_gmacs, size, cfg.importance, cfg.round_to)
        log(f"channel ratio {ratio:.3f} reaches <= {cfg.target_gmacs} GMACs at {size}x{size}")
    teacher = (cfg.teacher or cfg.parent) if cfg.distill else ""
    _same_settings(
        out / SETTINGS_FILE,
        resume,
        parent=file_sha256(parent_path),
        ratio=round(ratio, 6),
        rounds=cfg.rounds,
        importance=cfg.importance,
        round_to=cfg.round_to,
        teacher=teacher,
    )
    net, rounds = copy.deepcopy(parent), round_ratios(ratio, cfg.rounds)  # the parent stays whole for the card
    steps_left = stop_after
    round_steps = []
    for k, share in enumerate(rounds, start=1):
        folder = out / f"round{k}"
        if (folder / "model.pt").exists():
            ckpt = load_checkpoint(folder / "model.pt")
            net = model_from_checkpoint(ckpt, folder / "model.pt")
            round_steps.append(int(ckpt.get("steps", cfg.finetune.steps)))
            continue
        pruned_path = folder / "pruned.pt"
        made = not (resume and pruned_path.exists())
        if made:
            net = prune_channels(net, share, cfg.importance, cfg.round_to)
            save_model(net, pruned_path, input_size=size)
        else:
            net = load_model(pruned_path)
        log(f"round {k}/{cfg.rounds}: {count_params(net) / 1e6:.2f} M params, {count_macs(net, size) / 1e9:.3f} GMACs")
        ft = dataclasses.replace(
            cfg.finetune,
            out=str(folder),
            model=parent.model_name,
            model_args=dict(parent.model_args),
            teacher=teacher,
            input_size=size,
        )
        try:
            run = train(ft, resume=resume and any(folder.glob("state_*.pt")), log=log, stop_after=steps_left, model=net)
        except BaseException:
            if made and not any(folder.glob("state_*.pt")):  # refused before its first step: leave no round
                pruned_path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        if not run.finished:
            return PruneResult(run.path, None, False, {})
        net = run.model
        round_steps.append(run.steps)
        if steps_left is not None:
            steps_left -= run.steps
            if steps_left <= 0 and k < cfg.rounds:
                log("stopped between rounds; continue with --resume")
                return PruneResult(folder / "model.pt", None, False, {})
    validation = (
        validation_table({cfg.parent: parent, "pruned": net}, cfg.finetune.val, size) if cfg.finetune.val else None
    )
    card = {
        "title": f"Pruned {cfg.parent}",
        "method": f"structured channel pruning ({cfg.importance} importance, torch-pruning), {cfg.rounds} round(s) "
        f"of prune + fine-tune{' distilled from ' + teacher if teacher else ''}",
        "parent": f"{cfg.parent} (sha256 {file_sha256(parent_path)[:16]})",
        "channel ratio": f"{ratio:.3f}",
        "params": f"{count_params(parent) / 1e6:.3f} M -> {count_params(net) / 1e6:.3f} M",
        "GMACs": f"{count_macs(parent, size) / 1e9:.3f} -> {count_macs(net, size) / 1e9:.3f} at {size}x{size}",
        "data": cfg.finetune.data,
        "fine-tuning steps": " + ".join(str(n) for n in round_steps)
        + (f" (sized to {cfg.finetune.minutes:g} min per round)" if cfg.finetune.minutes else ""),
        "wall time": f"{time.perf_counter() - t0:.0f} s (this call, validation included)",
        "hardware": hardware(),
        **cfg.extra,
    }
    if validation is not None:
        card["validation"] = validation
    final = out / "model.pt"
    save_model(net.cpu().eval(), final, input_size=size, card=card)
    write_card_markdown(card, out)
    log(f"wrote {final}")
    return PruneResult(final, net, True, card)
