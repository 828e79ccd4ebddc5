import pytest
import torch
from PIL import Image

from edge_colorizer.checkpoint import load_checkpoint, load_model, save_model
from edge_colorizer.models import create_model
from training.release import SweepRow, choose, release


@pytest.fixture
def val_folder(tmp_path, real_photos):
    folder = tmp_path / "val"
    folder.mkdir()
    for name, img in real_photos.items():
        Image.fromarray(img).resize((96, 64)).save(folder / f"{name}.png")
    return folder


def test_release_stores_the_chosen_temperature_in_fp16(tmp_path, val_folder):
    torch.manual_seed(0)
    model = create_model("unet_s", head="bins", width=8).eval()
    src = tmp_path / "model.pt"
    save_model(model, src, steps=7)
    logs = []
    chosen = release(src, val_folder, tmp_path / "rel.pt", temperatures=(0.3, 1.0), min_cf_ratio=0.0, log=logs.append)
    ckpt = load_checkpoint(tmp_path / "rel.pt")
    assert ckpt["model_args"]["temperature"] == chosen.temperature
    assert ckpt["steps"] == 7 and ckpt["release"]["validation"] == str(val_folder)
    sweep = ckpt["release"]["sweep"]
    assert [row[0] for row in sweep] == [0.3, 1.0]
    assert ckpt["input_size"] == 256 and [row[4] for row in sweep] == [256, 256]  # no size stored: the default
    assert chosen.lpips == min(row[2] for row in sweep)  # lowest LPIPS wins when colourful enough
    assert all(v.dtype == torch.float16 for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert load_model(tmp_path / "rel.pt").temperature == chosen.temperature
    assert "(chosen)" in "\n".join(logs)
    assert "temperature" not in load_checkpoint(src)["model_args"]  # the source is left as it was


def test_choose_keeps_colourful_temperatures_and_refuses_sepia():
    rows = [SweepRow(0.38, 20.0, 0.20, 0.9), SweepRow(1.0, 21.0, 0.18, 0.5)]
    assert choose(rows, 0.6).temperature == 0.38  # 1.0 has lower LPIPS but is too gray
    assert choose(rows, 0.0).temperature == 1.0
    with pytest.raises(ValueError, match="the model is sepia"):
        choose(rows, 0.95)


def test_a_sepia_release_is_one_line_after_the_sweep_and_writes_nothing(tmp_path, val_folder, monkeypatch, capsys):
    import sys

    from training import release as release_module

    torch.manual_seed(0)
    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    out = tmp_path / "rel.pt"
    argv = [
        "release",
        str(src),
        "--val",
        str(val_folder),
        "--out",
        str(out),
        "--temperatures",
        "1",
        "--min-cf-ratio",
        "2",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        release_module.main()
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert "| 1 |" in captured.out  # the sweep is shown
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"release: {src}: no temperature reaches colorfulness ratio 2.0 (best ")
    assert line.endswith("the model is sepia")
    assert "Traceback" not in captured.err and not out.exists()


def test_release_sweeps_at_the_size_the_model_runs_at_or_chooses_one(tmp_path, val_folder):
    """A model trained at 48 is scored at 48 (not at the default 256) unless sizes are given; the
    chosen size is stored as the released file's input size, so it runs as it was scored."""
    torch.manual_seed(0)
    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src, input_size=48)
    quiet = dict(min_cf_ratio=0.0, log=lambda *_: None)
    own = release(src, val_folder, tmp_path / "own.pt", temperatures=(0.5,), **quiet)
    assert own.size == 48 and load_checkpoint(tmp_path / "own.pt")["input_size"] == 48
    chosen = release(src, val_folder, tmp_path / "rel.pt", temperatures=(0.3, 1.0), sizes=(32, 64), **quiet)
    ckpt = load_checkpoint(tmp_path / "rel.pt")
    assert [(row[4], row[0]) for row in ckpt["release"]["sweep"]] == [(32, 0.3), (32, 1.0), (64, 0.3), (64, 1.0)]
    best = min(ckpt["release"]["sweep"], key=lambda row: row[2])
    assert (chosen.size, chosen.temperature) == (best[4], best[0])
    assert ckpt["input_size"] == chosen.size and load_model(tmp_path / "rel.pt").input_size == chosen.size
    with pytest.raises(ValueError, match="multiple of 8"):
        release(src, val_folder, tmp_path / "bad.pt", temperatures=(0.5,), sizes=(50,), **quiet)


def test_bad_arguments_are_refused_before_the_sweep(tmp_path, val_folder, monkeypatch, capsys):
    import sys

    import training.release as release_module

    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    before = src.read_bytes()
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(release_module, "release", lambda *a, **k: pytest.fail("the sweep started"))
    cases = [
        (["--out", str(src)], f"release: {src}: is the checkpoint itself; write the release to another file"),
        (["--out", str(tmp_path / "r.txt")], f"release: {tmp_path / 'r.txt'}: unsupported output format .txt"),
        (["--out", str(tmp_path / "afile" / "r.pt")], f"release: {tmp_path / 'afile' / 'r.pt'}: "),
        (
            ["--out", str(tmp_path / "r.pt"), "--temperatures", "0.7,-1"],
            "release: --temperatures 0.7,-1: each must be > 0 and finite",
        ),
        (["--out", str(tmp_path / "r.pt"), "--sizes", "200,100"], "release: --sizes 200,100: each must be a multiple"),
    ]
    for extra, expected in cases:
        monkeypatch.setattr(sys, "argv", ["release", str(src), "--val", str(val_folder), *extra])
        with pytest.raises(SystemExit) as stop:
            release_module.main()
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 1 and line.startswith(expected), line
    assert src.read_bytes() == before and not (tmp_path / "r.pt").exists()


def _run_main(monkeypatch, argv):
    """``python -m training.release ARGV``: (exit code, stdout, stderr lines)."""
    import sys

    import training.release as release_module

    monkeypatch.setattr(sys, "argv", ["release", *map(str, argv)])
    code = 0
    try:
        release_module.main()
    except SystemExit as stop:
        code = stop.code
    return code


def test_option_values_are_checked_and_named_in_one_line(tmp_path, val_folder, monkeypatch, capsys):
    import training.release as release_module

    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    monkeypatch.setattr(release_module, "release", lambda *a, **k: pytest.fail("the sweep started"))
    out = tmp_path / "r.pt"
    cases = [
        (["--temperatures", "abc"], "release: --temperatures abc: not a list of numbers"),
        (["--temperatures", "0.5,,1"], "release: --temperatures 0.5,,1: not a list of numbers"),
        (["--sizes", "abc"], "release: --sizes abc: not a list of whole numbers"),
        (["--sizes", "256.0"], "release: --sizes 256.0: not a list of whole numbers"),
        (["--temperatures", "inf"], "release: --temperatures inf: each must be > 0 and finite"),
        (["--temperatures", "0.5,nan"], "release: --temperatures 0.5,nan: each must be > 0 and finite"),
        (["--temperatures", "1e999"], "release: --temperatures 1e999: each must be > 0 and finite"),
        (
            ["--temperatures", ""],
            "release: --temperatures: empty; give numbers or leave the option out for its default",
        ),
        (["--sizes", ""], "release: --sizes: empty; give whole numbers or leave the option out for its default"),
        (["--min-cf-ratio", "-1"], "release: --min-cf-ratio -1: must be 0-2"),
        (["--min-cf-ratio", "5"], "release: --min-cf-ratio 5: must be 0-2"),
        (["--min-cf-ratio", "nan"], "release: --min-cf-ratio nan: must be 0-2"),
        (["--min-cf-ratio", "abc"], "release: --min-cf-ratio abc: not a number"),
    ]
    for extra, expected in cases:
        code = _run_main(monkeypatch, [src, "--val", val_folder, "--out", out, *extra])
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and line == expected, (extra, line)
    code = _run_main(monkeypatch, [src, "--val", tmp_path / "nowhere", "--out", out])
    assert code == 1 and capsys.readouterr().err == f"release: --val {tmp_path / 'nowhere'}: not a folder of photos\n"
    assert not out.exists()
    # the library refuses them too, before loading anything
    for bad, match in [
        (dict(temperatures=(float("inf"),)), "temperature inf: must be > 0 and finite"),
        (dict(temperatures=()), "no temperatures to score"),
        (dict(sizes=()), "no network sizes to score"),
        (dict(min_cf_ratio=float("nan")), "colorfulness ratio floor nan: must be 0-2"),
        (dict(min_cf_ratio=-0.1), "colorfulness ratio floor -0.1: must be 0-2"),
    ]:
        with pytest.raises(ValueError, match=match):
            release(tmp_path / "missing.pt", val_folder, out, log=pytest.fail, **bad)


def test_a_regression_head_is_scored_once_per_size_and_stores_no_temperature(tmp_path, val_folder, monkeypatch, capsys):
    torch.manual_seed(0)
    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="regression", width=8).eval(), src)
    logs = []
    chosen = release(src, val_folder, tmp_path / "rel.pt", min_cf_ratio=0.0, log=logs.append, sizes=(32, 64))
    ckpt = load_checkpoint(tmp_path / "rel.pt")
    assert [(row[0], row[4]) for row in ckpt["release"]["sweep"]] == [(None, 32), (None, 64)]
    assert chosen.temperature is None and "temperature" not in ckpt["model_args"]
    assert ckpt["input_size"] == chosen.size and load_model(tmp_path / "rel.pt").head_type == "regression"
    assert "| – (chosen) |" in "\n".join(logs)
    # asking for temperatures it has not got is refused in one line, and nothing is written
    out = tmp_path / "t.pt"
    code = _run_main(monkeypatch, [src, "--val", val_folder, "--out", out, "--temperatures", "0.5,1"])
    assert code == 1 and not out.exists()
    assert capsys.readouterr().err == (
        f"release: {src}: the model has a regression head, no decoding temperature: leave --temperatures out\n"
    )


@pytest.mark.parametrize("when", ["sweep", "write"])
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_is_one_line_and_leaves_the_old_release_as_it_was(
    tmp_path, val_folder, monkeypatch, capsys, signame, when
):
    import signal

    import training.release as release_module

    sig = getattr(signal, signame)
    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    out = tmp_path / "rel.pt"
    out.write_bytes(b"the previous release")
    before = sorted(p.name for p in tmp_path.iterdir())
    if when == "sweep":  # as Ctrl-C lands: in the middle of scoring
        calls, real_evaluate = [], release_module.evaluate

        def evaluate(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                signal.raise_signal(sig)
            return real_evaluate(*args, **kwargs)

        monkeypatch.setattr(release_module, "evaluate", evaluate)
    else:  # half the release written to its temporary
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            f.truncate(f.tell() // 2)
            signal.raise_signal(sig)

        monkeypatch.setattr(torch, "save", save)
    argv = [src, "--val", val_folder, "--out", out, "--temperatures", "1", "--sizes", "32", "--min-cf-ratio", "0"]
    code = _run_main(monkeypatch, argv)
    err = capsys.readouterr().err
    assert code == 128 + sig
    assert err == f"stopped by {signame}; unfinished outputs were removed\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary, no half-written release
    assert out.read_bytes() == b"the previous release"


def test_photos_that_cannot_be_scored_get_one_line_each_and_the_sweep_goes_on(
    tmp_path, val_folder, monkeypatch, capsys
):
    import numpy as np

    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    gray = val_folder / "gray.png"
    Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(gray)
    tiny = val_folder / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tiny)
    corrupt = val_folder / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    out = tmp_path / "rel.pt"
    argv = [
        src,
        "--val",
        val_folder,
        "--out",
        out,
        "--temperatures",
        "0.5,1",
        "--sizes",
        "32",
        "--min-cf-ratio",
        "0",
    ]
    assert _run_main(monkeypatch, argv) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    # once each, not once per setting (2) and again for the fp16 check
    assert len(lines) == 3 and all(line.startswith("release: skipped ") for line in lines), lines
    assert {line.split(": ")[1].removeprefix("skipped ") for line in lines} == {str(gray), str(tiny), str(corrupt)}
    assert f"release: skipped {tiny}: 20x20 px is too small for LPIPS (needs 31 px on the short side)" in lines
    assert any("a gray photo" in line for line in lines) and not any("--" in line for line in lines)
    assert len(load_checkpoint(out)["release"]["sweep"]) == 2
    # nothing left to score: the lines, then what went wrong, about the folder
    bad = tmp_path / "bad"
    bad.mkdir()
    gray.rename(bad / "gray.png")
    out2 = tmp_path / "rel2.pt"
    assert _run_main(monkeypatch, [src, "--val", bad, "--out", out2]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"release: skipped {bad / 'gray.png'}: a gray photo (R = G = B), no colour to score a colorizer against",
        f"release: {bad}: no photos to evaluate",
    ]
    assert not out2.exists()


def test_progress_counts_every_photo_of_every_setting_and_shows_on_a_terminal_only(tmp_path, val_folder, monkeypatch):
    from io import StringIO

    from rich.console import Console

    import edge_colorizer.cli.common as common

    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    done, totals = [], []
    quiet = dict(min_cf_ratio=0.0, log=lambda *_: None)
    release(
        src,
        val_folder,
        tmp_path / "a.pt",
        (0.5, 1.0),
        sizes=(32, 64),
        progress=done.append,
        on_total=totals.append,
        **quiet,
    )
    # 2 temperatures x 2 sizes, then the fp16 check, over 3 photos
    assert len(done) == 15 and set(totals) == {15}
    for terminal in (True, False):
        shown = StringIO()
        monkeypatch.setattr(common, "err", Console(file=shown, force_terminal=terminal, width=100))
        argv = [src, "--val", val_folder, "--out", tmp_path / "b.pt", "--temperatures", "1", "--sizes", "32"]
        argv += ["--min-cf-ratio", "0"]
        assert _run_main(monkeypatch, argv) == 0
        assert ("release sweep" in shown.getvalue()) == terminal


def test_chroma_gains_are_swept_and_the_chosen_one_rebuilds_with_the_file(tmp_path, val_folder):
    torch.manual_seed(0)
    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    logs = []
    quiet = dict(log=logs.append, sizes=(32,), temperatures=(0.5,))
    # a floor only the strongest gain can reach: it is chosen, stored, and the file rebuilds with it
    first = release(src, val_folder, tmp_path / "all.pt", min_cf_ratio=0.0, chroma_gains=(1.0, 1.5), **quiet)
    sweep = load_checkpoint(tmp_path / "all.pt")["release"]["sweep"]
    assert [row[5] for row in sweep] == [1.0, 1.5]
    assert sweep[1][3] > sweep[0][3] > 0  # more colourful at the higher gain
    floor = (sweep[0][3] + sweep[1][3]) / 2
    chosen = release(src, val_folder, tmp_path / "rel.pt", min_cf_ratio=floor, chroma_gains=(1.0, 1.5), **quiet)
    assert chosen.chroma_gain == 1.5 and first.chroma_gain in (1.0, 1.5)
    ckpt = load_checkpoint(tmp_path / "rel.pt")
    assert ckpt["model_args"]["chroma_gain"] == 1.5 and load_model(tmp_path / "rel.pt").chroma_gain == 1.5
    assert "| 32 | 0.5 (chosen) | 1.5 |" in "\n".join(logs) and "chroma gain 1.5" in logs[-1]
    # re-released without gains: the file's own gain is the one scored and kept
    again = release(tmp_path / "rel.pt", val_folder, tmp_path / "again.pt", min_cf_ratio=0.0, **quiet)
    assert again.chroma_gain == 1.5 and load_model(tmp_path / "again.pt").chroma_gain == 1.5
    # a gain of 1 chosen is not written into the arguments of a model that had none
    release(src, val_folder, tmp_path / "one.pt", min_cf_ratio=0.0, chroma_gains=(1.0,), **quiet)
    assert "chroma_gain" not in load_checkpoint(tmp_path / "one.pt")["model_args"]
    for bad, match in [
        (dict(chroma_gains=()), "no chroma gains to score"),
        (dict(chroma_gains=(1.0, 0.0)), "chroma gain 0: must be > 0 and at most 2"),
        (dict(chroma_gains=(3.0,)), "chroma gain 3: must be > 0 and at most 2"),
    ]:
        with pytest.raises(ValueError, match=match):
            release(tmp_path / "missing.pt", val_folder, tmp_path / "x.pt", log=pytest.fail, **bad)


def test_chroma_gain_and_protocol_options_are_checked_and_named_in_one_line(tmp_path, val_folder, monkeypatch, capsys):
    import training.release as release_module

    src = tmp_path / "model.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), src)
    monkeypatch.setattr(release_module, "release", lambda *a, **k: pytest.fail("the sweep started"))
    for extra, expected in [
        (["--chroma-gains", "abc"], "release: --chroma-gains abc: not a list of numbers"),
        (["--chroma-gains", "1,0"], "release: --chroma-gains 1,0: each must be > 0 and at most 2"),
        (["--chroma-gains", "nan"], "release: --chroma-gains nan: each must be > 0 and at most 2"),
        (
            ["--chroma-gains", ""],
            "release: --chroma-gains: empty; give numbers or leave the option out for its default",
        ),
        (["--protocol", "full"], "release: --protocol full: one of deploy, paper"),
    ]:
        code = _run_main(monkeypatch, [src, "--val", val_folder, "--out", tmp_path / "r.pt", *extra])
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and line == expected, (extra, line)


def test_the_paper_protocol_scores_validation_as_the_benchmark_does(tmp_path, val_folder):
    from edge_colorizer.evaluate import evaluate, paper_view
    from edge_colorizer.metrics.lpips import LPIPS

    torch.manual_seed(0)
    model = create_model("unet_s", head="bins", width=8).eval()
    src = tmp_path / "model.pt"
    save_model(model, src)
    logs = []
    quiet = dict(log=logs.append, sizes=(64,), temperatures=(0.5,), min_cf_ratio=0.0)
    paper = release(src, val_folder, tmp_path / "p.pt", protocol="paper", **quiet)
    deploy = release(src, val_folder, tmp_path / "d.pt", **quiet)
    assert load_checkpoint(tmp_path / "p.pt")["release"]["protocol"] == "paper"
    assert load_checkpoint(tmp_path / "d.pt")["release"]["protocol"] == "deploy"
    assert "validation (paper protocol)" in logs[len(logs) // 2 - 1]
    model.temperature = 0.5
    from edge_colorizer.colorizer import ColorizerModule

    expected = evaluate(
        {"m": ColorizerModule(model, size=64)}, val_folder, include_gray=False, lpips=LPIPS("alex"), view=paper_view
    )[0]
    assert paper.lpips == pytest.approx(expected.lpips, abs=1e-6) and paper.lpips != pytest.approx(deploy.lpips)
    with pytest.raises(ValueError, match="protocol 'full': must be one of deploy, paper"):
        release(src, val_folder, tmp_path / "x.pt", protocol="full", log=pytest.fail)
