import contextlib
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.checkpoint import load_checkpoint, load_model, save_model
from edge_colorizer.models import create_model
from tests.hostile.corpus import big_gray_png
from training.config import RECIPES, Stage, TrainConfig, recipe
from training.loop import cosine_lr, lr_at
from training.train import train

QUIET = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory, real_photos):
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    for i, img in enumerate(list(real_photos.values()) * 2):
        y, x = rng.integers(0, 100, 2)
        Image.fromarray(img[y : y + 200, x : x + 240]).resize((60, 50)).save(root / f"p{i}.png")
    return root


def tiny_cfg(tmp_path, data, **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "run"),
        model="unet_s",
        model_args={"head": "bins", "width": 8},
        size=32,
        batch_size=6,
        steps=6,
        lr=1e-3,
        warmup=2,
        log_every=1,
        ckpt_every=3,
        sample_every=100,
    )
    base.update(kw)
    return TrainConfig(**base)


def log_rows(run):
    return list(csv.DictReader(open(run / "log.csv")))


def test_training_reduces_loss_and_writes_artifacts(tmp_path, tiny_pool):
    cfg = tiny_cfg(tmp_path, tiny_pool, steps=30, lr=3e-3, log_every=5)
    result = train(cfg, **QUIET)
    rows = log_rows(tmp_path / "run")
    assert len(rows) == 6 and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert {r["stage"] for r in rows} == {"train"}
    model = load_model(result.path)
    assert model.model_args == {"head": "bins", "width": 8}
    assert model.input_size == 32  # the size it was trained for travels with the weights
    assert (tmp_path / "run" / "samples_train_000030.png").exists()
    assert (tmp_path / "run" / "config.json").exists()


def test_resume_continues_exactly(tmp_path, tiny_pool):
    # two batches per epoch: the run is cut mid-epoch, and must see the same batches and crops after it
    straight = train(tiny_cfg(tmp_path / "a", tiny_pool, batch_size=3), **QUIET).path
    cfg_b = tiny_cfg(tmp_path / "b", tiny_pool, batch_size=3)
    assert not train(cfg_b, stop_after=3, **QUIET).finished
    assert not (tmp_path / "b" / "run" / "model.pt").exists()
    resumed = train(cfg_b, resume=True, **QUIET).path
    a, b = load_model(straight).state_dict(), load_model(resumed).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert [int(r["step"]) for r in log_rows(tmp_path / "b" / "run")] == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_other_config_or_missing_state(tmp_path, tiny_pool):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tiny_cfg(tmp_path, tiny_pool), resume=True, **QUIET)
    assert not (tmp_path / "run").exists()  # the refused folder is not created
    train(tiny_cfg(tmp_path, tiny_pool), stop_after=3, **QUIET)
    with pytest.raises(ValueError, match=r"different configuration \(lr\)"):
        train(tiny_cfg(tmp_path, tiny_pool, lr=5e-3), resume=True, **QUIET)


def test_resume_takes_other_execution_settings(tmp_path, tiny_pool):
    """Threads, loader processes, logging cadence: how a run executes, not what it computes."""
    train(tiny_cfg(tmp_path, tiny_pool, threads=2), stop_after=3, **QUIET)
    moved = tmp_path / "moved"
    (tmp_path / "run").rename(moved)
    again = tiny_cfg(tmp_path, tiny_pool, out=str(moved), threads=1, workers=1, log_every=2, device="cpu")
    result = train(again, resume=True, **QUIET)
    assert result.finished and result.steps == 6


def test_resume_reads_a_state_saved_before_a_setting_existed(tmp_path, tiny_pool):
    """A state from an older version lacks the newer settings: they count as their defaults."""
    train(tiny_cfg(tmp_path, tiny_pool), stop_after=3, **QUIET)
    path = tmp_path / "run" / "state_train.pt"
    state = torch.load(path, weights_only=False)
    for name in ("subset", "cutouts", "cutout_prob", "perceptual", "perceptual_net"):
        del state["config"][name]
    del state["stage"]["minutes"]  # the stage's settings too
    torch.save(state, path)
    # and its log has the older columns: the resumed run's rows go under them
    old_rows = log_rows(tmp_path / "run")
    old_columns = [c for c in old_rows[0] if c != "perceptual"]
    with open(tmp_path / "run" / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, old_columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(old_rows)
    assert train(tiny_cfg(tmp_path, tiny_pool), resume=True, **QUIET).finished
    rows = log_rows(tmp_path / "run")
    assert list(rows[0]) == old_columns and [int(r["step"]) for r in rows] == list(range(1, 7))
    assert all(float(r["loss"]) > 0 and float(r["l1"]) > 0 and float(r["lr"]) > 0 for r in rows)
    train(tiny_cfg(tmp_path, tiny_pool, out=str(tmp_path / "b")), stop_after=3, **QUIET)
    with pytest.raises(ValueError, match=r"\(subset\)"):
        train(tiny_cfg(tmp_path, tiny_pool, out=str(tmp_path / "b"), subset=0.5), resume=True, **QUIET)


def test_a_fresh_run_in_a_used_folder_starts_a_new_log(tmp_path, tiny_pool):
    train(tiny_cfg(tmp_path, tiny_pool, steps=2), **QUIET)
    train(tiny_cfg(tmp_path, tiny_pool, steps=3), **QUIET)
    assert [int(r["step"]) for r in log_rows(tmp_path / "run")] == [1, 2, 3]


def test_l1_recipe_trains_regression_head(tmp_path, tiny_pool):
    cfg = tiny_cfg(tmp_path, tiny_pool, loss="l1", model_args={"head": "regression", "width": 8}, steps=3)
    assert load_model(train(cfg, **QUIET).path).head_type == "regression"


def test_validation_keeps_the_best_weights_and_stops_early(tmp_path, tiny_pool):
    from edge_colorizer.data.dataset import ColorizationDataset
    from edge_colorizer.models import create_model
    from training.loop import run_stage
    from training.objectives import Supervised

    cfg = tiny_cfg(tmp_path, tiny_pool, val="unused", val_every=2, patience=2, steps=40)
    scores, seen = iter([0.5, 0.4, 0.45, 0.46, 0.3]), []

    def validate(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"lpips": next(scores)}

    model = create_model("unet_s", head="regression", width=8)
    dataset = ColorizationDataset(tiny_pool, size=32, log=lambda *_: None)
    result = run_stage(model, Supervised("l1", None, 1.0), cfg, cfg.stages()[0], dataset, validate=validate, **QUIET)
    assert result.finished and result.step == 8 and len(seen) == 4  # 0.45, 0.46: two rounds without gain
    assert result.best_score == 0.4
    assert all(torch.equal(v, seen[1][k]) for k, v in result.model.state_dict().items())
    rows = list(csv.DictReader(open(tmp_path / "run" / "val.csv")))
    assert [(int(r["step"]), int(r["best"])) for r in rows] == [(2, 1), (4, 1), (6, 0), (8, 0)]


def test_a_run_with_validation_records_its_best_score(tmp_path, tiny_pool):
    result = train(tiny_cfg(tmp_path, tiny_pool, val=str(tiny_pool), val_every=3, steps=6), **QUIET)
    rows = list(csv.DictReader(open(tmp_path / "run" / "val.csv")))
    assert [int(r["step"]) for r in rows] == [3, 6]
    best = min(float(r["lpips"]) for r in rows)
    assert load_checkpoint(result.path)["val_lpips"] == pytest.approx(best, abs=1e-5)


def test_config_rejects_mismatched_loss_and_head():
    with pytest.raises(ValueError, match="head"):
        TrainConfig(loss="l1", model_args={"head": "bins"})
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="mse")
    with pytest.raises(KeyError, match="student"):
        recipe("nope")
    with pytest.raises(ValueError, match="no setting pretrain_steps"):
        recipe("gan-teacher", pretrain_steps=3)
    with pytest.raises(ValueError, match="distillation"):
        TrainConfig(loss="l1", model_args={"head": "regression"}, teacher="teacher")


def test_one_vocabulary_for_every_recipe():
    teacher = RECIPES["gan-teacher"]
    assert [s.name for s in teacher.stages()] == ["pretrain", "gan"]
    assert [s.name for s in RECIPES["student"].stages()] == ["train"]
    pre, gan = teacher.stages()
    assert (pre.steps, pre.lr, pre.optimizer) == (teacher.steps, teacher.lr, "adam")
    assert (gan.steps, gan.lr, gan.betas) == (teacher.gan.steps, teacher.gan.lr_g, (0.5, 0.999))
    assert recipe("gan-teacher", steps=7, lr=1e-4).stages()[0].steps == 7  # --steps is honoured


def test_cosine_lr_warms_up_then_decays_to_the_floor():
    lrs = [cosine_lr(s, 1.0, 100, warmup=10) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.525)
    assert lrs[100] == pytest.approx(0.05) and cosine_lr(500, 1.0, 100) == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[10:-1], lrs[11:], strict=True))
    assert lr_at(50, Stage("x", 100, 0.3, schedule="constant")) == 0.3


def test_steps_for_budget_fits_the_time_left_and_never_exceeds_steps():
    from training.loop import BUDGET_SHARE, steps_for_budget

    stage = Stage("train", steps=10_000, lr=1e-3, minutes=1.0)
    # 60 s budget, 10 s spent, 0.1 s/step: 90 % of the 50 s left is 450 more steps
    assert steps_for_budget(stage, 35, 10.0, 0.1) == 35 + int(BUDGET_SHARE * 50 / 0.1)
    assert steps_for_budget(Stage("train", steps=100, lr=1e-3, minutes=1.0), 35, 10.0, 0.1) == 100
    assert steps_for_budget(stage, 35, 120.0, 0.1) == 36  # over budget: one more step, then the end


def test_a_time_budget_fixes_the_step_count_and_the_schedule(tmp_path, tiny_pool, monkeypatch):
    import training.loop as loop

    ticks = iter(range(10**6))  # each reading of the loop's clock is 20 s after the last
    monkeypatch.setattr(loop, "clock", lambda: 20.0 * next(ticks))
    cfg = tiny_cfg(tmp_path, tiny_pool, steps=500, minutes=1.0, log_every=100, ckpt_every=1000, workers=0)
    result = train(cfg, **QUIET)
    steps = load_checkpoint(result.path)["steps"]
    assert loop.PROBE_SKIP + loop.PROBE_STEPS < steps < 500 and result.steps == steps
    rows = log_rows(tmp_path / "run")
    assert int(rows[-1]["step"]) == steps  # the last logged step is the sized end
    assert float(rows[-1]["lr"]) == pytest.approx(lr_at(steps - 1, cfg.stages()[0], steps))


def test_data_loading_workers_train_the_same_recipe(tmp_path, tiny_pool):
    result = train(tiny_cfg(tmp_path, tiny_pool, steps=4, workers=2), **QUIET)
    assert result.finished and result.steps == 4


def test_a_subset_with_cutouts_trains_on_that_share(tmp_path, tiny_pool):
    cut = tmp_path / "cutouts"
    cut.mkdir()
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[16:64, 16:64] = (30, 200, 40, 255)  # a green square on a transparent background
    Image.fromarray(rgba, "RGBA").save(cut / "square.png")
    logs = []
    cfg = tiny_cfg(tmp_path, tiny_pool, subset=0.5, cutouts=str(cut), cutout_prob=1.0, steps=2, batch_size=1)
    result = train(cfg, log=logs.append)
    line = next(x for x in logs if x.startswith("training on"))
    n = int(line.split()[2])
    assert 1 <= n < 6 and "(50% subset)" in line and "1 cut-outs pasted on 100% of crops" in line
    assert result.finished and load_checkpoint(result.path)["train_config"]["cutouts"] == str(cut)
    with pytest.raises(ValueError, match="cutout_prob"):
        tiny_cfg(tmp_path, tiny_pool, cutout_prob=1.5)
    with pytest.raises(ValueError, match="subset"):
        tiny_cfg(tmp_path, tiny_pool, subset=0.0)


def _small_teacher(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "teacher.pt"
    save_model(create_model("unet_s", head="bins", width=8, out_stride=2).eval(), path, input_size=32)
    return path


def test_compile_runs_the_training_forward_compiled_and_keeps_the_plain_weights(tmp_path, tiny_pool, monkeypatch):
    """``compile``: the trainee's and the frozen teacher's forwards go through torch.compile (here a
    recorder that counts the calls of what it was given); weights, EMA and checkpoint stay the plain
    modules' (no ``_orig_mod.`` names), and the result is the uncompiled run's."""
    import training.loop

    calls = {}

    def fake_compile(fn):
        name = type(fn).__name__ if isinstance(fn, torch.nn.Module) else fn.__name__
        calls[name] = 0

        def counted(*args):
            calls[name] += 1
            return fn(*args)

        return counted

    monkeypatch.setattr(training.loop.torch, "compile", fake_compile)
    teacher = str(_small_teacher(tmp_path))
    plain = train(tiny_cfg(tmp_path / "a", tiny_pool, teacher=teacher, ema=0.9), **QUIET)
    assert calls == {}
    compiled = train(tiny_cfg(tmp_path / "b", tiny_pool, teacher=teacher, ema=0.9, compile=True), **QUIET)
    assert calls == {"_Logits": 6, "logits": 6}  # one forward of each per step
    a, b = load_checkpoint(plain.path)["state_dict"], load_checkpoint(compiled.path)["state_dict"]
    assert a.keys() == b.keys() and not any("_orig_mod" in k for k in b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_may_switch_compiling_on(tmp_path, tiny_pool, monkeypatch):
    import training.loop

    monkeypatch.setattr(training.loop.torch, "compile", lambda fn: fn)
    train(tiny_cfg(tmp_path, tiny_pool), stop_after=3, **QUIET)
    assert train(tiny_cfg(tmp_path, tiny_pool, compile=True), resume=True, **QUIET).finished


@pytest.mark.slow
def test_compiled_training_matches_the_plain_run(tmp_path, tiny_pool):
    """The real torch.compile (inductor, on the CPU): same steps, same weights within float tolerance."""
    plain = load_checkpoint(train(tiny_cfg(tmp_path / "a", tiny_pool, steps=3), **QUIET).path)["state_dict"]
    compiled = train(tiny_cfg(tmp_path / "b", tiny_pool, steps=3, compile=True), **QUIET)
    state = load_checkpoint(compiled.path)["state_dict"]
    assert state.keys() == plain.keys()
    worst = max(float((state[k].float() - plain[k].float()).abs().max()) for k in plain)
    assert worst < 1e-3


@contextlib.contextmanager
def stop_requested_at(step: int):
    """What a SIGTERM's handler does (set ``training.loop.STOP``), at a known step of the runs inside."""
    import training.loop as loop

    append = loop._append_csv

    def hook(path, header, row):
        append(path, header, row)
        if path.name == loop.LOG_FILE and int(row[1]) == step:
            loop.STOP.set()

    loop._append_csv = hook
    try:
        yield
    finally:
        loop._append_csv = append
        loop.STOP.clear()


def test_a_stop_request_saves_the_state_after_its_step_and_resume_continues_exactly(tmp_path, tiny_pool):
    straight = train(tiny_cfg(tmp_path / "a", tiny_pool, batch_size=3, ckpt_every=100), **QUIET).path
    cfg = tiny_cfg(tmp_path / "b", tiny_pool, batch_size=3, ckpt_every=100)  # no periodic state before the end
    with stop_requested_at(4):
        run = train(cfg, **QUIET)
    assert not run.finished and not (tmp_path / "b" / "run" / "model.pt").exists()
    assert torch.load(run.path, weights_only=False)["step"] == 4  # our own file: RNG states
    resumed = train(cfg, resume=True, **QUIET).path
    a, b = load_model(straight).state_dict(), load_model(resumed).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_stops_training_with_its_state_saved(tmp_path, tiny_pool, signame):
    """As a terminal sends it: to the whole process group, the loader's workers included."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "edge_colorizer.cli", "train", "--data", str(tiny_pool), "--out", str(out)]
    args += ["--steps", "5000", "--batch-size", "2", "--size", "32", "--threads", "1", "--workers", "2"]
    err = tmp_path / "stderr.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "training on" not in err.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(2.0)  # some steps, well before the first periodic checkpoint (step 200)
        os.killpg(proc.pid, getattr(signal, signame))
        code = proc.wait(timeout=120)
    finally:
        try:  # whatever is left of the group, workers included
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    text = err.read_text()
    assert code == 128 + getattr(signal, signame), text
    assert text.splitlines()[-1] == f"stopped by {signame}; the state is saved: continue with --resume", text
    assert "Traceback" not in text and "exited unexpectedly" not in text
    step = torch.load(out / "state_train.pt", weights_only=False)["step"]
    assert 1 <= step < 200 and not (out / "model.pt").exists()


def test_a_run_that_cannot_start_leaves_no_folder(tmp_path, tiny_pool):
    """Refused before any work, one line each, and the run folder is not created."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (dict(val=str(empty)), ValueError, "no photos to evaluate"),
        (dict(batch_size=50), ValueError, "fewer than one batch of 50"),
        (dict(device="cuda"), ValueError, "no CUDA device"),
        (dict(out=str(tmp_path / "a_file")), ValueError, "is a file, a folder is needed"),
        (dict(out=str(tmp_path / "a_file" / "run")), ValueError, "is not a folder"),
        (dict(out=str(tiny_pool / "run")), ValueError, "is inside --data"),
        (dict(out=str(tiny_pool)), ValueError, "is inside --data"),
    ]
    for kw, error, message in cases:
        if kw.get("device") == "cuda" and torch.cuda.is_available():
            continue
        with pytest.raises(error, match=message):
            train(tiny_cfg(tmp_path, tiny_pool, **kw), **QUIET)
        assert not (tmp_path / "run").exists(), kw
    assert all(p.suffix == ".png" for p in tiny_pool.iterdir())  # nothing written among the photos
    with pytest.raises(ValueError, match="size must be a multiple of 8, got 20"):
        tiny_cfg(tmp_path, tiny_pool, size=20)


def test_validation_photos_are_checked_and_reported_once(tmp_path, tiny_pool):
    val = tmp_path / "val"
    val.mkdir()
    for i, p in enumerate(sorted(tiny_pool.iterdir())[:2]):
        (val / f"v{i}.png").write_bytes(p.read_bytes())
    (val / "broken.png").write_bytes(b"not a png")
    (val / "gone.png").symlink_to(tmp_path / "nowhere.png")
    big_gray_png(val / "huge.png", 10000, 10000, valid=False)  # refused from its header
    lines = []
    result = train(tiny_cfg(tmp_path, tiny_pool, val=str(val), val_every=3), log=lines.append)
    assert result.finished
    skips = [line for line in lines if line.startswith("skip ")]
    assert len(skips) == 3 and any("broken.png: not an image" in s for s in skips), skips
    assert any("gone.png: broken link" in s for s in skips), skips
    too_large = "huge.png: too large (10000x10000 = 100.0 megapixels; the limit is 50 megapixels)"
    assert any(s.endswith(too_large) for s in skips), skips
    assert not any("--" in s for s in skips)  # no option train does not have
    assert any(line.startswith("validation on 2 photos from") and "gray: LPIPS" in line for line in lines), lines


def test_a_fresh_run_refuses_to_throw_away_an_unfinished_one(tmp_path, tiny_pool):
    assert not train(tiny_cfg(tmp_path, tiny_pool), stop_after=3, **QUIET).finished
    state = tmp_path / "run" / "state_train.pt"
    before = state.read_bytes()
    with pytest.raises(ValueError, match=r"holds an unfinished run \(state_train.pt\); continue it with --resume"):
        train(tiny_cfg(tmp_path, tiny_pool), **QUIET)
    assert state.read_bytes() == before
    with pytest.raises(FileNotFoundError, match=r"holds a run of another recipe \(state_train.pt; this one saves"):
        gan = tiny_cfg(tmp_path, tiny_pool, gan=RECIPES["gan-teacher"].gan)
        train(gan, resume=True, **QUIET)
    with pytest.raises(ValueError, match=r"holds an unfinished run of another recipe \(state_train.pt\)"):
        train(tiny_cfg(tmp_path, tiny_pool, gan=RECIPES["gan-teacher"].gan), **QUIET)
    assert state.read_bytes() == before
    assert train(tiny_cfg(tmp_path, tiny_pool), resume=True, **QUIET).finished
    (tmp_path / "run" / "model.pt").rename(tmp_path / "released.pt")  # moved away: the state says finished
    (tmp_path / "run" / "samples_train_000099.png").write_bytes(b"an old grid")
    assert train(tiny_cfg(tmp_path, tiny_pool), **QUIET).finished  # a finished run may be replaced
    assert not (tmp_path / "run" / "samples_train_000099.png").exists()  # and its sample grids go with it


@pytest.mark.parametrize("damage", ["truncated", "empty", "checkpoint", "folder"])
def test_resume_from_a_damaged_state_is_one_line_naming_it(tmp_path, tiny_pool, damage):
    train(tiny_cfg(tmp_path, tiny_pool), stop_after=3, **QUIET)
    state = tmp_path / "run" / "state_train.pt"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:2000])
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "checkpoint":
        save_model(create_model("unet_s", head="bins", width=8), state)
    else:
        state.unlink()
        state.mkdir()
    with pytest.raises(ValueError) as info:
        train(tiny_cfg(tmp_path, tiny_pool), resume=True, **QUIET)
    message = str(info.value)
    assert message.startswith(str(state)) and "\n" not in message, message


def test_init_starts_from_a_checkpoints_weights_and_refuses_ones_that_do_not_fit(tmp_path, tiny_pool):
    first = train(tiny_cfg(tmp_path / "a", tiny_pool), **QUIET)
    tuned = train(tiny_cfg(tmp_path / "b", tiny_pool, init=str(first.path), steps=1, lr=1e-9, warmup=0), **QUIET)
    start, end = load_checkpoint(first.path)["state_dict"], load_checkpoint(tuned.path)["state_dict"]
    weights = [k for k in start if "running_" not in k and "num_batches" not in k]  # BN statistics move in a step
    assert start.keys() == end.keys() and all(torch.allclose(start[k], end[k], atol=1e-5) for k in weights)
    fresh = create_model("unet_s", head="bins", width=8).state_dict()
    assert not torch.allclose(fresh["head.weight"], end["head.weight"])  # not the model's own initialisation
    wide = tiny_cfg(tmp_path / "c", tiny_pool, init=str(first.path), model_args={"head": "bins", "width": 16})
    with pytest.raises(ValueError, match=r"--init .*model.pt: its weights do not fit the recipe.s model \(size"):
        train(wide, **QUIET)
    assert not (tmp_path / "c").exists()  # refused before the run folder is made


def test_init_builds_its_model_without_reading_pretrained_weights(tmp_path, tiny_pool, monkeypatch):
    import training.train as train_module

    first = train(tiny_cfg(tmp_path / "a", tiny_pool), **QUIET)
    calls, real = [], train_module.create_model

    def recording(name, **kwargs):  # as a generator with ImageNet weights would be asked
        calls.append(kwargs)
        return real(name, **{k: v for k, v in kwargs.items() if k != "pretrained"})

    monkeypatch.setattr(train_module, "create_model", recording)
    train(tiny_cfg(tmp_path / "b", tiny_pool, init=str(first.path), steps=1), **QUIET)
    assert calls[0]["pretrained"] is False  # its weights are replaced: no ImageNet file read or fetched
