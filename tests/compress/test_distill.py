import csv

import pytest
import torch

from compress.distill import DistillConfig, distill
from edge_colorizer.checkpoint import load_checkpoint, load_model, save_model
from edge_colorizer.models import create_model
from tests.training.test_train import QUIET, stop_requested_at, tiny_cfg, tiny_pool  # noqa: F401  (fixture)
from training.objectives import distillation_kl


@pytest.fixture
def teacher_path(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "teacher.pt"
    save_model(create_model("unet_s", head="bins", width=8, out_stride=2).eval(), path, input_size=64)
    return path


def test_kl_is_zero_for_the_teachers_own_distribution_and_pools_across_strides():
    logits = torch.randn(2, 265, 8, 8)
    assert distillation_kl(logits, logits, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    # a teacher at twice the resolution is pooled to the student's grid: a constant teacher matches exactly
    teacher = logits.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert distillation_kl(logits, teacher, 1.0).item() == pytest.approx(0.0, abs=1e-5)
    assert distillation_kl(torch.zeros_like(logits), logits, 1.0).item() > 0.1


def test_distillation_trains_the_student_leaves_the_teacher_and_compares_with_a_baseline(
    tmp_path,
    tiny_pool,  # noqa: F811
    teacher_path,
):
    teacher_before = load_model(teacher_path).state_dict()
    cfg = DistillConfig(
        teacher=str(teacher_path),
        student="unet_s",
        student_args={"width": 4},
        out=str(tmp_path / "distilled"),
        train=tiny_cfg(tmp_path, tiny_pool, steps=3, batch_size=3, val=str(tiny_pool), kd_weight=0.7),
        baseline=True,
    )
    card = distill(cfg, **QUIET)
    teacher_after = load_model(teacher_path).state_dict()
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher_after.items())  # frozen, file untouched
    kd = [float(r["kd"]) for r in csv.DictReader(open(tmp_path / "distilled" / "log.csv"))]
    assert len(kd) == 3 and all(v > 0 for v in kd)
    base_rows = list(csv.DictReader(open(tmp_path / "distilled" / "baseline" / "log.csv")))
    assert all(r["kd"] == "" for r in base_rows)  # the baseline is the same run without the teacher
    assert set(card["validation"]) == {"teacher", "distilled", "baseline"}
    ckpt = load_checkpoint(tmp_path / "distilled" / "model.pt")
    assert ckpt["model_args"] == {"head": "bins", "width": 4} and ckpt["card"]["teacher"] == str(teacher_path)
    assert "ms per training batch" in ckpt["card"]["teacher forward"]
    assert (tmp_path / "distilled" / "CARD.md").read_text().count("|") > 20


def test_a_teacher_without_bins_is_refused(tmp_path, tiny_pool):  # noqa: F811
    path = tmp_path / "reg.pt"
    save_model(create_model("unet_s", head="regression", width=4), path)
    cfg = DistillConfig(
        teacher=str(path), student="unet_s", out=str(tmp_path / "d"), train=tiny_cfg(tmp_path, tiny_pool)
    )
    with pytest.raises(ValueError, match="no ab-bins head"):
        distill(cfg, **QUIET)


def test_a_stop_during_the_last_step_leaves_the_scoring_to_the_resumed_run(
    tmp_path,
    tiny_pool,  # noqa: F811
    teacher_path,
):
    cfg = DistillConfig(
        teacher=str(teacher_path),
        student="unet_s",
        student_args={"width": 4},
        out=str(tmp_path / "distilled"),
        train=tiny_cfg(tmp_path, tiny_pool, steps=3, batch_size=3),
    )
    with stop_requested_at(3):  # the last step
        assert distill(cfg, **QUIET) == {}  # the training finished; the card is not written
    assert (tmp_path / "distilled" / "model.pt").exists() and not (tmp_path / "distilled" / "CARD.md").exists()
    card = distill(cfg, resume=True, **QUIET)
    assert card["teacher"] == str(teacher_path) and (tmp_path / "distilled" / "CARD.md").exists()
