from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_colorizer.checkpoint import save_model
from edge_colorizer.cli import main
from edge_colorizer.models import create_model


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(create_model("unet_s", width=8).eval(), path)
    return str(path)


@pytest.fixture
def inputs(tmp_path, real_photos):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(real_photos["chelsea"][::4, ::4]).convert("L").save(src / "cat.jpg")
    rgba = np.dstack(
        [real_photos["coffee"][::4, ::4], np.full(real_photos["coffee"][::4, ::4].shape[:2], 90, np.uint8)]
    )
    Image.fromarray(rgba, "RGBA").save(src / "sub" / "coffee.png")
    (src / "zero.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not an image")
    return src


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_batch_goes_on_past_bad_files(tmp_path, inputs, tiny_ckpt):
    out = tmp_path / "out"
    result = run("colorize", inputs, "--out", out, "--model", tiny_ckpt, "--size", 64)
    assert result.exit_code == 1
    assert "wrote 2 image(s)" in result.output
    assert "zero.png: empty file" in result.output and "notes.jpg: not an image" in result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["cat.jpg", "sub/coffee.png"]  # folder structure kept, nothing partial
    cat_in = Image.open(inputs / "cat.jpg")
    cat_out = Image.open(out / "cat.jpg")
    assert cat_out.size == cat_in.size and cat_out.mode == "RGB"
    coffee = np.asarray(Image.open(out / "sub" / "coffee.png"))
    assert coffee.shape[-1] == 4 and (coffee[..., 3] == 90).all()  # alpha kept


def test_success_exit_code_and_side_by_side(tmp_path, inputs, tiny_ckpt):
    out = tmp_path / "sbs"
    result = run("colorize", inputs / "cat.jpg", "--out", out, "--model", tiny_ckpt, "--side-by-side")
    assert result.exit_code == 0, result.output
    grid = Image.open(out / "cat_side_by_side.png")
    w, h = Image.open(inputs / "cat.jpg").size
    assert grid.size == (2 * w + 8, h)


def test_refuses_to_overwrite_inputs(tmp_path, inputs, tiny_ckpt):
    before = (inputs / "cat.jpg").read_bytes()
    result = run("colorize", inputs / "cat.jpg", "--out", inputs, "--model", tiny_ckpt)
    assert result.exit_code == 1 and "would overwrite an input" in result.output
    assert (inputs / "cat.jpg").read_bytes() == before


def test_unknown_model_and_missing_input(tmp_path, inputs, tiny_ckpt):
    result = run("colorize", inputs, "--out", tmp_path / "o", "--model", "no-such-model")
    assert result.exit_code != 0 and "neither a bundled model" in result.output
    gone = tmp_path / "gone.onnx"  # a file's path that does not exist is "not found", whatever its suffix
    result = run("colorize", inputs, "--out", tmp_path / "o", "--model", gone)
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {gone}: not found"
    # a missing path is one line; the other inputs are still colorized
    result = run(
        "colorize", tmp_path / "missing.png", inputs / "cat.jpg", "--out", tmp_path / "o", "--model", tiny_ckpt
    )
    assert (
        result.exit_code == 1 and "missing.png: no such file" in result.output and "wrote 1 image(s)" in result.output
    )
    # every input refused: the output folder this run would have made is not left behind empty
    result = run("colorize", tmp_path / "missing.png", "--out", tmp_path / "new" / "o", "--model", tiny_ckpt)
    assert result.exit_code == 1 and "wrote 0 image(s) in" in result.output and not (tmp_path / "new").exists()


def _forged(tmp_path, tiny_ckpt, **changes):
    import torch

    ckpt = torch.load(tiny_ckpt, weights_only=True)
    ckpt.update(changes)
    path = tmp_path / "forged.pt"
    torch.save(ckpt, path)
    return path


class Smuggled:
    """A class a weights-only load refuses (what a malicious pickle would carry)."""


@pytest.mark.parametrize(
    "forge, words",
    [
        (lambda c: {"model_args": {"width": 2048}}, "weight stem.body.0.weight has shape"),
        (lambda c: {"model_args": {"width": 8, "colour": 3}}, "cannot rebuild model 'unet_s'"),
        (lambda c: {"model_name": "unet_xl"}, "cannot rebuild model 'unet_xl'"),
        (lambda c: {"state_dict": {k + "_renamed": v for k, v in c["state_dict"].items()}}, "weights do not match"),
        (lambda c: {"pickle": Smuggled()}, "refused: the file stores Python objects (tests.test_cli.Smuggled)"),
    ],
)
def test_forged_checkpoints_are_one_line_through_the_cli(tmp_path, inputs, tiny_ckpt, forge, words):
    import torch

    path = _forged(tmp_path, tiny_ckpt, **forge(torch.load(tiny_ckpt, weights_only=True)))
    result = CliRunner().invoke(main, ["colorize", str(inputs), "--out", str(tmp_path / "o"), "--model", str(path)])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: ") and words in lines[0], result.stderr
    assert not (tmp_path / "o").exists()  # refused before any image


def test_an_out_that_is_a_file_is_one_line(tmp_path, inputs, tiny_ckpt):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = run("colorize", inputs, "--out", afile, "--model", tiny_ckpt, "--size", 64)
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {afile}: the output folder is a file"
    assert afile.read_text() == "x"


def test_a_folder_or_a_photo_as_model_is_one_line(tmp_path, inputs):
    folder = run("colorize", inputs, "--out", tmp_path / "o", "--model", inputs)
    assert folder.exit_code == 1 and folder.stderr.strip() == f"Error: {inputs}: a folder, not a checkpoint file"
    photo = run("colorize", inputs, "--out", tmp_path / "o", "--model", inputs / "cat.jpg")
    assert photo.exit_code == 1 and photo.stderr.strip().startswith(
        f"Error: {inputs / 'cat.jpg'}: not a torch checkpoint"
    )
    assert not (tmp_path / "o").exists()


def test_missing_checkpoint_is_one_line(tmp_path, inputs):
    result = run("colorize", inputs, "--out", tmp_path / "o", "--model", tmp_path / "nothere.pt")
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {tmp_path / 'nothere.pt'}: checkpoint not found"


def test_cuda_without_gpu_is_a_clear_error(tmp_path, inputs, tiny_ckpt):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run("colorize", inputs, "--out", tmp_path / "o", "--model", tiny_ckpt, "--device", "cuda")
    assert result.exit_code != 0 and "no CUDA device" in result.output


def test_models_lists_registry():
    result = run("models")
    assert result.exit_code == 0 and "unet_s" in result.output and "patchgan" in result.output
    lines = result.output.splitlines()
    teacher = next(line for line in lines if line.split()[:1] == ["teacher"])
    assert teacher.split()[1:] == ["teacher_gan.pt", "default", "of", "colorize"]
    onnx = next(line for line in lines if line.split()[:1] == ["onnx"])
    assert onnx.split()[:3] == ["onnx", "onnxruntime", "NAME.onnx"] and "int8*" in onnx
    assert any(
        line.split()[:3] == ["coreml", "coreml", "NAME.mlpackage/"] and "runs here: no" in line for line in lines
    )


@pytest.mark.slow  # --time runs the full-resolution path on 1080p images
def test_evaluate_prints_gray_floor_and_timings(tmp_path, real_photos, tiny_ckpt):
    import json

    data = tmp_path / "eval"
    data.mkdir()
    Image.fromarray(real_photos["coffee"]).save(data / "coffee.png")
    out = tmp_path / "e.json"
    grid = tmp_path / "grid.png"
    result = run(
        "evaluate",
        "--data",
        data,
        "--model",
        tiny_ckpt,
        "--size",
        64,
        "--max-side",
        128,
        "--json",
        out,
        "--time",
        "--grid",
        grid,
    )
    assert result.exit_code == 0, result.output
    assert "| gray (ab = 0) | 1 |" in result.output and "| 1080x1920 |" in result.output
    saved = json.loads(out.read_text())
    assert saved["quality"][0]["colorfulness"] < 1 and len(saved["timing"][tiny_ckpt]) == 2
    w, h = Image.open(grid).size
    assert h == 184 and w > 3 * 180  # one photo: gray | tiny | truth


def test_same_name_from_two_folders_is_not_overwritten(tmp_path, real_photos, tiny_ckpt):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(real_photos["chelsea"][::8, ::8]).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    result = run(
        "colorize", tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "--out", out, "--model", tiny_ckpt, "--size", 32
    )
    assert result.exit_code == 1 and f"is already written from {tmp_path / 'a' / 'x.png'} (same name)" in result.output
    assert [p.name for p in out.iterdir()] == ["x.png"]


def test_train_refuses_options_its_recipe_cannot_honour(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    cases = [
        (["--recipe", "student", "--gan-steps", "0"], "has no adversarial stage"),
        (["--recipe", "gan-teacher", "--gan-steps", "0", "--gan-minutes", "1"], "leaves no adversarial stage"),
        (["--recipe", "gan-teacher", "--gan-steps", "0", "--gan-lambda", "3"], "--gan-lambda: --gan-steps 0 leaves"),
        (["--recipe", "student", "--gan-lambda", "3"], "--gan-lambda: recipe 'student' has no adversarial stage"),
        (["--recipe", "gan-teacher", "--gan-lambda", "0"], "--gan-lambda"),
        (["--cutout-prob", "0.3"], "--cutout-prob needs --cutouts"),
        (["--subset", "0"], "--subset"),
        (["--recipe", "student-l1", "--rebalance", "0.2"], "no ab-bin loss to rebalance"),
        (["--rebalance", "0"], "--rebalance"),
        (["--perceptual-net", "alex"], "--perceptual-net needs --perceptual W"),
        (["--perceptual", "0", "--perceptual-net", "alex"], "--perceptual-net needs --perceptual W"),
        (["--perceptual", "-1"], "--perceptual"),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(tmp_path / "o"), *extra])
        assert result.exit_code == 2 and message in result.output, (extra, result.output)
        assert not (tmp_path / "o").exists()


def test_train_gan_steps_0_drops_the_adversarial_stage(tmp_path, monkeypatch):
    import training.train

    seen = []
    monkeypatch.setattr(training.train, "train", lambda cfg, **kw: seen.append(cfg))
    data = tmp_path / "d"
    data.mkdir()
    args = ["train", "--data", str(data), "--recipe", "gan-teacher", "--out", str(tmp_path / "o"), "--seed", "3"]
    assert CliRunner().invoke(main, [*args, "--gan-steps", "0", "--subset", "0.5"]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "--gan-steps", "7"]).exit_code == 0
    assert [s.name for s in seen[0].stages()] == ["train"] and seen[0].subset == 0.5 and seen[0].seed == 3
    assert [s.name for s in seen[1].stages()] == ["pretrain", "gan"] and seen[1].gan.steps == 7
    assert not seen[0].compile
    assert CliRunner().invoke(main, [*args, "--compile", "--full-frame", "0.5", "--rebalance", "0.25"]).exit_code == 0
    assert seen[2].compile and seen[2].full_frame == 0.5 and seen[0].full_frame == 0.0
    assert seen[2].rebalance == 0.25 and seen[0].rebalance == 0.5
    assert CliRunner().invoke(main, [*args, "--gan-lambda", "3", "--gan-steps", "9"]).exit_code == 0
    assert seen[3].gan.gan_lambda == 3 and seen[3].gan.steps == 9 and seen[1].gan.gan_lambda == 10
    assert CliRunner().invoke(main, [*args, "--perceptual", "2", "--perceptual-net", "alex"]).exit_code == 0
    assert (seen[4].perceptual, seen[4].perceptual_net) == (2.0, "alex") and seen[3].perceptual == 0.0


def test_working_spins_on_a_terminal_only(monkeypatch):
    from io import StringIO

    from rich.console import Console

    import edge_colorizer.cli.common as common

    for terminal in (True, False):
        out = StringIO()
        monkeypatch.setattr(common, "err", Console(file=out, force_terminal=terminal, width=100))
        with common.working("export d[/x]/photos [2024].pt to onnx"):  # a path is text, not rich markup
            common.say("a line said meanwhile")
        text = out.getvalue()
        assert "a line said meanwhile" in text
        assert ("export d[/x]/photos [2024].pt to onnx" in text) == terminal, text


def test_compress_distill_passes_compile_to_its_training(tmp_path, monkeypatch):
    import compress.distill

    seen = []
    monkeypatch.setattr(compress.distill, "distill", lambda cfg, **kw: seen.append(cfg))
    data = tmp_path / "d"
    data.mkdir()
    args = [
        "compress",
        "distill",
        "--teacher",
        "teacher",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--compile",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert seen[0].train.compile


def test_stop_after_step_asks_first_and_stops_on_the_second_signal(capsys):
    import os
    import signal
    import threading

    from edge_colorizer.cli.common import end_if_stopped, stop_after_step

    event = threading.Event()
    with pytest.raises(SystemExit) as second:
        with stop_after_step(event) as got:
            os.kill(os.getpid(), signal.SIGTERM)  # handled between bytecodes: at once on the main thread
            assert got == [signal.SIGTERM] and event.is_set()
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the second signal did not stop")
    assert second.value.code == 128 + signal.SIGTERM and not event.is_set()  # cleared for the next command
    assert "stopped by SIGTERM at once; --resume continues from the last saved state" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the previous handler is back
    end_if_stopped(got, lambda: False)  # finished anyway: the command ends normally
    with pytest.raises(SystemExit) as ended:
        end_if_stopped(got, lambda: True)
    assert ended.value.code == 128 + signal.SIGTERM


def test_compress_commands_refuse_before_any_work(tmp_path, tiny_ckpt):
    afile = tmp_path / "afile"
    afile.write_text("x")
    data = tmp_path / "d"
    data.mkdir()
    common = ["--data", str(data)]
    cases = [
        (["prune", "--model", tiny_ckpt, "--out", str(afile / "sub"), *common], f"{afile} is not a folder"),
        (["prune", "--model", "student-int8", "--out", str(tmp_path / "p"), *common], "is an exported onnx model"),
        (["distill", "--teacher", "student-int8", "--out", str(tmp_path / "d1"), *common], "is an exported onnx"),
        (["prune", "--model", tiny_ckpt, "--out", str(tmp_path / "p2"), "--resume", *common], "nothing to resume"),
        (["distill", "--teacher", tiny_ckpt, "--out", str(tmp_path / "d2"), "--resume", *common], "nothing to resume"),
        (
            ["quantize", "--model", "student-int8", "--out", str(tmp_path / "q"), *common, "--val", str(data)],
            "is an exported onnx model",
        ),
        (["quantize", "--model", tiny_ckpt, "--out", str(afile), *common, "--val", str(data)], "is a file"),
    ]
    for args, words in cases:
        result = CliRunner().invoke(main, ["compress", *args])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and words in lines[0], (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d"]  # no folder was created


def test_compare_asked_for_int8_without_calibration_is_a_usage_error(tiny_ckpt):
    result = CliRunner().invoke(main, ["compare", "--model", tiny_ckpt, "--formats", "onnx", "--precisions", "int8"])
    assert result.exit_code == 2 and "precision int8 needs calibration images" in result.output


def test_evaluate_video_checks_its_json_path_and_model_first(tmp_path):
    (tmp_path / "afile").write_text("x")
    bad_json = CliRunner().invoke(main, ["evaluate-video", "--json", str(tmp_path / "afile" / "r.json")])
    assert bad_json.exit_code == 1 and bad_json.stderr.strip().endswith(f"{tmp_path / 'afile'} is not a folder")
    artifact = CliRunner().invoke(main, ["evaluate-video", "--model", "student-int8"])
    assert artifact.exit_code == 1 and "student-int8 is an exported onnx model" in artifact.stderr


def test_data_prepare_refuses_an_out_or_cache_that_is_a_file_before_any_download(tmp_path, monkeypatch):
    import edge_colorizer.data.sources as sources

    monkeypatch.setattr(sources, "prepare", lambda *a, **k: pytest.fail("the download started"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for extra in (["--out", str(afile)], ["--out", str(tmp_path / "d"), "--cache", str(afile / "c")]):
        result = CliRunner().invoke(main, ["data", "prepare", *extra])
        assert result.exit_code == 1 and result.output.count("\n") == 1 and str(afile) in result.output, result.output
        assert not (tmp_path / "d").exists()


def test_converters_quiet_drops_what_libraries_print_and_keeps_this_tools_lines():
    import os
    import subprocess
    import sys

    code = "\n".join(
        [
            "import os, warnings",
            "from edge_colorizer.cli.common import converters_quiet, say",
            "with converters_quiet():",
            "    print('python stdout noise')",
            "    os.write(1, b'native stdout noise\\n')",
            "    os.write(2, b'native stderr noise\\n')",
            "    warnings.warn('a warning')",
            "    say('our line')",
            "print('after')",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGE_COLORIZER_VERBOSE"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "after\n", "our line\n")
    env["EDGE_COLORIZER_VERBOSE"] = "1"
    verbose = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "native stdout noise" in verbose.stdout and "native stderr noise" in verbose.stderr
    env["EDGE_COLORIZER_VERBOSE"] = "0"
    zero = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert zero.stdout == "after\n"

    # an exception, nested use and a signal inside: the descriptors come back, this tool's lines get out
    code = "\n".join(
        [
            "import os, signal, time",
            "from edge_colorizer.cli.common import converters_quiet, say, stop_cleanly",
            "try:",
            "    with converters_quiet():",
            "        with converters_quiet():",
            "            say('inner line')",
            "        raise RuntimeError('x')",
            "except RuntimeError:",
            "    pass",
            "os.write(2, b'visible after an exception\\n')",
            "with stop_cleanly(), converters_quiet():",
            "    os.write(2, b'noise\\n')",
            "    os.kill(os.getpid(), signal.SIGTERM)",
            "    time.sleep(30)",
        ]
    )
    del env["EDGE_COLORIZER_VERBOSE"]
    stopped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert stopped.returncode == 143 and stopped.stderr == (
        "inner line\nvisible after an exception\nstopped by SIGTERM; unfinished outputs were removed\n"
    ), stopped.stderr


def test_a_ctrl_c_while_the_command_line_starts_is_one_line():
    """torch and the commands load when the CLI starts (a second or more): a Ctrl-C meanwhile (here a
    KeyboardInterrupt raised by the import of one command module) is one line and exit 130."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "edge_colorizer.cli.video":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, Interrupt())
        from edge_colorizer.cli import main
        main()
        """
    )
    done = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr == "stopped by SIGINT\n" and done.stdout == "", done
    import edge_colorizer  # its public names load when first used

    assert edge_colorizer.ColorizerModule.__name__ == "ColorizerModule" and callable(edge_colorizer.create_model)


def test_chroma_gain_scales_the_colour_and_is_refused_where_it_cannot_apply(tmp_path, inputs):
    import torch

    from edge_colorizer.metrics import colorfulness
    from runtimes.models import open_colorizer

    torch.manual_seed(0)
    net = create_model("unet_s", width=8).eval()
    with torch.no_grad():
        net.head.weight.mul_(20.0)  # saturated colours, so the gain shows
    ckpt = tmp_path / "vivid.pt"
    save_model(net, ckpt)
    cf = {}
    for gain in (None, 0.5, 1.5):
        out = tmp_path / f"g{gain}"
        extra = [] if gain is None else ["--chroma-gain", gain]
        result = run("colorize", inputs / "sub" / "coffee.png", "--out", out, "--model", ckpt, "--size", 64, *extra)
        assert result.exit_code == 0, result.output
        cf[gain] = colorfulness(np.asarray(Image.open(out / "coffee.png"))[..., :3])
    assert cf[0.5] < 0.75 * cf[None] and cf[1.5] > 1.2 * cf[None]
    for bad in ("0", "-1", "2.5", "abc", "nan"):
        result = CliRunner().invoke(main, ["colorize", str(inputs), "--out", str(tmp_path / "b"), "--chroma-gain", bad])
        assert result.exit_code == 2 and "--chroma-gain" in result.output and not (tmp_path / "b").exists()
    (tmp_path / "model.onnx").write_bytes(b"")  # refused by its format, before it is read
    with pytest.raises(ValueError, match="artifact has its chroma gain inside; --chroma-gain does not apply"):
        open_colorizer(str(tmp_path / "model.onnx"), chroma_gain=1.2)
    with pytest.raises(ValueError, match="chroma_gain must be > 0 and finite, got nan"):
        open_colorizer(str(ckpt), chroma_gain=float("nan"))


def _float_options():
    """Every float-valued option of every command (group subcommands included)."""
    stack = [main]
    while stack:
        command = stack.pop()
        stack.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            if isinstance(param.type, (click.types.FloatParamType, click.FloatRange)):
                yield command.name, param


def test_every_float_option_refuses_nan_and_infinities(tmp_path):
    from edge_colorizer.cli.common import FiniteRange

    options = list(_float_options())
    assert len(options) > 20 and all(isinstance(p.type, FiniteRange) for _, p in options), [
        (name, p.name) for name, p in options if not isinstance(p.type, FiniteRange)
    ]
    for _, param in options:
        for bad in ("nan", "inf", "-inf"):
            with pytest.raises(click.BadParameter, match="is not a finite number|not in the range"):
                param.type.convert(bad, param, None)
    data = tmp_path / "d"
    data.mkdir()
    for option, bad in (("--lr", "nan"), ("--ema", "nan"), ("--perceptual", "inf"), ("--minutes", "nan")):
        result = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(tmp_path / "o"), option, bad])
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, (option, result.output)
        assert not (tmp_path / "o").exists()


def test_a_stop_swallowed_inside_a_command_still_ends_it_as_a_stop(capsys):
    import signal

    from edge_colorizer.cli.common import stop_cleanly
    from edge_colorizer.stopping import check_stop, record_stop

    with pytest.raises(SystemExit) as end:
        with stop_cleanly():
            try:
                raise record_stop(signal.SIGTERM)
            except BaseException:  # a library that catches everything and goes on
                pass
    assert end.value.code == 128 + signal.SIGTERM
    assert "stopped by SIGTERM; unfinished outputs were removed" in capsys.readouterr().err
    check_stop()  # cleared when the command ended: the next one starts afresh
    with pytest.raises(SystemExit) as end:
        with stop_cleanly():
            try:
                raise record_stop(signal.SIGINT)
            except BaseException as exc:  # a library that wraps the stop in its own error, which propagates
                raise RuntimeError("Failed to export the model") from exc
    assert end.value.code == 128 + signal.SIGINT and "stopped by SIGINT" in capsys.readouterr().err


def test_an_empty_path_or_model_is_a_usage_error_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.png").write_bytes(b"mine")  # what colorize --out '' would have replaced
    cases = [
        ["colorize", "x.png", "--out", ""],
        ["colorize", "x.png", "--out", "o", "--model", " "],
        ["evaluate", "--data", ".", "--model", "student", "--model", ""],
        ["evaluate", "--data", ".", "--json", ""],
        ["export", "--model", ""],
        ["bench", "--data", ".", "--out", ""],
        ["compare", "--model", ""],
        ["data", "prepare", "--out", ""],
        ["train", "--data", ".", "--out", ""],
        ["compress", "prune", "--model", "student", "--out", "", "--data", "."],
        ["video", "in.mp4", "--out", ""],
        ["evaluate-video", "--json", ""],
        ["colorize", "", "--out", "o"],  # an unset variable as the input: not every photo in the folder
        ["video", "", "--out", "x.mp4"],
    ]
    for args in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "empty; name a file, folder or model" in result.output, (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
    assert (tmp_path / "keep.png").read_bytes() == b"mine"


def test_data_prepare_names_a_folder_it_cannot_create_before_any_download(tmp_path, monkeypatch):
    import edge_colorizer.data.sources

    monkeypatch.setattr(edge_colorizer.data.sources, "prepare", lambda *a, **k: pytest.fail("it started"))
    (tmp_path / "afile").write_text("")
    result = CliRunner().invoke(main, ["data", "prepare", "--out", str(tmp_path / "afile" / "pools")])
    assert result.exit_code == 1 and "cannot create the output folder (Not a directory)" in result.output
    assert len(result.output.strip().splitlines()) == 1

    def failing(out, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(out) / "train"))

    monkeypatch.setattr(edge_colorizer.data.sources, "prepare", failing)
    result = CliRunner().invoke(main, ["data", "prepare", "--out", str(tmp_path / "new" / "pools")])
    assert result.exit_code == 1 and result.output.strip().endswith("pools/train: Permission denied"), result.output
    assert not (tmp_path / "new").exists()  # the folders it made for the run are gone with it


def test_train_init_and_steps_0_reach_the_config_and_steps_0_needs_a_stage(tmp_path, monkeypatch):
    import training.train

    seen = []
    monkeypatch.setattr(training.train, "train", lambda cfg, **kw: seen.append(cfg))
    data = tmp_path / "d"
    data.mkdir()
    args = ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--recipe", "gan-teacher"]
    assert CliRunner().invoke(main, [*args, "--init", "teacher", "--steps", "0", "--perceptual", "5"]).exit_code == 0
    assert seen[0].init == "teacher" and [s.name for s in seen[0].stages()] == ["gan"]
    for extra in (["--gan-steps", "0"], ["--recipe", "student"]):
        result = CliRunner().invoke(main, [*args, "--steps", "0", *extra])
        assert result.exit_code == 2 and "--steps 0 leaves nothing to train" in result.output, result.output
    result = CliRunner().invoke(main, [*args, "--steps", "0", "--lr", "0.1", "--minutes", "5"])
    assert result.exit_code == 2 and "--lr, --minutes: --steps 0 leaves no supervised stage" in result.output
