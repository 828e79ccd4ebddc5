"""Knowledge distillation: a student learns the teacher's ab-bin distributions through the shared loop.

Teacher and students share the 265 in-gamut ab bins, so the student matches the teacher's per-pixel
distribution (KL at a temperature, Hinton et al. 2015) besides the supervised loss; the teacher runs
online, frozen, in every step. ``baseline=True`` also trains the same student without the teacher —
same data, steps and seed — and scores both on the validation photos, so whether distillation helps
is measured, not assumed.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from compress.card import hardware, validation_table, write_card_markdown
from edge_colorizer.checkpoint import load_checkpoint, load_model, model_from_checkpoint, save_model
from edge_colorizer.colorizer import DEFAULT_SIZE
from edge_colorizer.inference import BUNDLED
from edge_colorizer.models import list_models
from edge_colorizer.models.profile import count_macs, count_params
from edge_colorizer.timing import time_ms
from training.config import TrainConfig
from training.loop import STOP
from training.train import load_teacher, train


@dataclass(frozen=True)
class DistillConfig:
    teacher: str  # bundled name or checkpoint with an ab-bins head
    student: str  # an architecture (trained from scratch), a bundled name or a checkpoint (fine-tuned)
    out: str
    train: TrainConfig  # data, val, steps, lr, kd_weight, kd_temperature, ...
    student_args: dict = field(default_factory=dict)  # architecture arguments (from-scratch students)
    baseline: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.student_args and self.student not in list_models():
            raise ValueError(
                f"{self.student}: a trained model keeps its own architecture; the student's arguments "
                f"(--width) apply to an architecture name ({', '.join(list_models())})"
            )


def _student(cfg: DistillConfig) -> tuple[nn.Module | None, str, dict]:
    """(initial model or None to build from the config, model name, model args)."""
    if cfg.student in list_models():
        return None, cfg.student, {"head": "bins", **cfg.student_args}
    from edge_colorizer.inference import resolve_model_path

    model = load_model(resolve_model_path(cfg.student))
    return model, model.model_name, dict(model.model_args)


def teacher_cost_ms(teacher: nn.Module, batch: int, size: int) -> float:
    """Median wall time of one online teacher forward on a training batch, in ms (as the loop runs it)."""
    x = torch.zeros(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    teacher = teacher.eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        return time_ms(lambda: teacher.logits(x), repeats=3, warmup=1).p50


def distill(cfg: DistillConfig, resume: bool = False, log=print, stop_after: int | None = None) -> dict:
    """Train the student with the teacher (and, with ``baseline``, without); returns the card."""
    out = Path(cfg.out)
    t0 = time.perf_counter()
    model, name, args = _student(cfg)
    size = getattr(model, "input_size", 0) or cfg.train.input_size or DEFAULT_SIZE
    base = dataclasses.replace(cfg.train, model=name, model_args=args, input_size=size)
    labels = ["distilled", "baseline"] if cfg.baseline else ["distilled"]
    results, steps = {}, base.steps
    for label in labels:
        if label == "distilled":
            run_cfg = dataclasses.replace(base, out=str(out), teacher=cfg.teacher)
        else:  # exactly the distilled run's steps, even when a time budget decided them
            run_cfg = dataclasses.replace(base, out=str(out / "baseline"), teacher="", steps=steps, minutes=0.0)
        length = f"{run_cfg.steps} steps"
        if run_cfg.minutes:
            length = f"{run_cfg.minutes:g} min (at most {length})"
        log(f"{label}: {name} for {length}{' with teacher ' + cfg.teacher if run_cfg.teacher else ''}")
        has_state = any(Path(run_cfg.out).glob("state_*.pt"))
        if (Path(run_cfg.out) / "model.pt").exists() and resume:
            path = Path(run_cfg.out) / "model.pt"
            ckpt = load_checkpoint(path)
            results[label] = (model_from_checkpoint(ckpt, path), None)
            steps = int(ckpt.get("steps", steps))
            continue
        init = _student(cfg)[0]  # the same starting weights for both runs
        run = train(run_cfg, resume=resume and has_state, log=log, stop_after=stop_after, model=init)
        if not run.finished:
            return {}
        results[label], steps = (run.model, run.seconds), run.steps
    if STOP.is_set():  # a stop asked for during the last step: the scoring is the resumed run's
        log("stopped after training; continue with --resume")
        return {}
    teacher = load_teacher(cfg.teacher)
    student = results["distilled"][0]
    validation = None
    if base.val:
        validation = validation_table(
            {"teacher": teacher, **{label: m for label, (m, _) in results.items()}}, base.val, size
        )
    card = {
        "title": f"{name} distilled from {cfg.teacher}",
        "method": f"knowledge distillation: {base.kd_weight} x T^2 KL(teacher || student) at T = "
        f"{base.kd_temperature} + {1 - base.kd_weight:g} x supervised (CE over ab bins + L1)",
        "teacher": cfg.teacher,
        "student": f"{cfg.student} ({name}, {count_params(student) / 1e6:.3f} M params, "
        f"{count_macs(student, size) / 1e9:.3f} GMACs at {size}x{size})",
        "data": base.data,
        "steps": f"{steps}{f' (sized to {base.minutes:g} min)' if base.minutes else ''}, batch {base.batch_size}, "
        f"crops {base.size}x{base.size}, seed {base.seed}",
        "teacher forward": f"{teacher_cost_ms(teacher, base.batch_size, base.size):.0f} ms per training batch "
        f"(online, frozen; {count_macs(teacher, base.size) / 1e9:.2f} GMACs per image)",
        "wall time": f"{time.perf_counter() - t0:.0f} s (this call, validation included)",
        "hardware": hardware(),
        **cfg.extra,
    }
    for label, (_, seconds) in results.items():
        if seconds is not None:
            card[f"{label} run"] = f"{seconds:.0f} s, {seconds / steps:.3f} s/step"
    if validation is not None:
        card["validation"] = validation
    if BUNDLED.get(cfg.student) is not None or cfg.student not in list_models():
        card["initialised from"] = cfg.student
    save_model(student.cpu().eval(), out / "model.pt", input_size=size, card=card, steps=steps)
    write_card_markdown(card, out)
    log(f"wrote {out / 'model.pt'}")
    return card
