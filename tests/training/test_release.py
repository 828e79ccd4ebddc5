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
        "5",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        release_module.main()
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert "| 1 |" in captured.out  # the sweep is shown
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"release: {src}: no temperature reaches colorfulness ratio 5.0 (best ")
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
            "release: --temperatures 0.7,-1: each must be > 0",
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
