"""``edge-colorizer compare`` and ``export``: choices from the format table, parity rows, exit codes."""

import os

import pytest
from click.testing import CliRunner

from edge_colorizer.cli import main
from edge_colorizer.io import default_file_mode

pytest.importorskip("onnxruntime")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def onnx_artifact(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny.onnx"
    result = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_export_writes_reports_and_refuses_to_overwrite(onnx_artifact, tiny_checkpoint):
    assert onnx_artifact.exists() and onnx_artifact.stat().st_mode & 0o777 == default_file_mode()
    again = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", onnx_artifact)
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    assert len(again.output.strip().splitlines()) == 1
    forced = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", onnx_artifact, "--force")
    assert forced.exit_code == 0 and "parity vs torch: max" in forced.output


def test_export_choices_come_from_the_table(tiny_checkpoint, tmp_path):
    bad_format = run("export", "--model", tiny_checkpoint, "--format", "foo", "--out", tmp_path / "x")
    assert bad_format.exit_code == 2 and "'onnx'" in bad_format.output
    no_such_precision = run("export", "--model", tiny_checkpoint, "--precision", "palettized", "--out", tmp_path / "x")
    assert no_such_precision.exit_code == 2 and "has no precision 'palettized'" in no_such_precision.output
    uncalibrated = run("export", "--model", tiny_checkpoint, "--precision", "int8", "--out", tmp_path / "x.onnx")
    assert uncalibrated.exit_code == 2 and "--calibration" in uncalibrated.output
    assert list(tmp_path.iterdir()) == []


def test_export_under_a_file_is_one_line(tiny_checkpoint, tmp_path):
    (tmp_path / "file").write_text("")
    result = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", tmp_path / "file" / "m.onnx")
    assert result.exit_code == 1 and "is not a folder" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_into_a_read_only_folder_is_one_line(tiny_checkpoint, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    result = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", folder / "m.onnx")
    assert result.exit_code == 1 and "permission denied" in result.output and "Traceback" not in result.output


def test_compare_passes_for_a_good_artifact_and_fails_for_a_broken_one(onnx_artifact, tiny_checkpoint, tmp_path):
    import onnx
    from onnx import numpy_helper

    good = run("compare", "--model", tiny_checkpoint, "--size", 64, "--artifact", onnx_artifact)
    assert good.exit_code == 0, good.output
    assert "PASS  onnx      fp32" in good.output and "(limit 2 / 0.05)" in good.output

    model = onnx.load(str(onnx_artifact))
    head = next(n for n in model.graph.node if n.name.startswith("/net/head/") and n.op_type == "Conv")
    weight = next(i for i in model.graph.initializer if i.name == head.input[1])
    weight.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weight), weight.name))  # a broken network
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    failed = run("compare", "--model", tiny_checkpoint, "--size", 64, "--artifact", broken)
    assert failed.exit_code == 1 and "FAIL  onnx      fp32" in failed.output

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    unreadable = run("compare", "--model", tiny_checkpoint, "--size", 64, "--artifact", corrupt)
    assert unreadable.exit_code == 1 and "FAIL" in unreadable.output and "Traceback" not in unreadable.output


def test_compare_exports_every_format_that_runs_here(tiny_checkpoint):
    result = run("compare", "--model", tiny_checkpoint, "--size", 64, "--formats", "onnx,tensorrt,coreml")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("PASS  onnx") for line in lines)
    assert any(line.startswith("SKIP  tensorrt") for line in lines)  # no GPU here, or no tensorrt
    assert any(line.startswith("SKIP  coreml") for line in lines)


def test_compare_unknown_format_is_a_usage_error(tiny_checkpoint):
    result = run("compare", "--model", tiny_checkpoint, "--formats", "onnx,foo")
    assert result.exit_code == 2 and "unknown format 'foo'" in result.output


def test_compare_runs_an_artifact_at_the_network_size_it_was_exported_at(onnx_artifact, tiny_checkpoint):
    result = run("compare", "--model", tiny_checkpoint, "--artifact", onnx_artifact)  # exported at 64, not 256
    assert result.exit_code == 0 and "PASS  onnx      fp32    " in result.output, result.output
    assert result.output.rstrip().endswith(str(onnx_artifact))  # its own checkpoint: no note after the path


def test_compare_names_another_checkpoint_and_goes_on_past_an_unknown_file(
    onnx_artifact, tmp_path, tiny_net, tiny_checkpoint
):
    import copy

    import torch

    from edge_colorizer.checkpoint import save_model

    other = tmp_path / "other.pt"
    changed = copy.deepcopy(tiny_net)
    with torch.no_grad():
        changed.head.weight.neg_()
    save_model(changed, other)
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"")
    result = run("compare", "--model", other, "--size", 64, "--artifact", photo, "--artifact", onnx_artifact)
    rows = [line for line in result.output.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert result.exit_code == 1 and len(rows) == 2, result.output
    assert rows[0].startswith("FAIL  ?") and "unknown artifact type" in rows[0]
    assert rows[1].startswith("FAIL  onnx") and f"exported from another checkpoint ({tiny_checkpoint})" in rows[1]


def test_compare_precisions_are_checked_against_the_formats(tiny_checkpoint, onnx_artifact):
    none = run("compare", "--model", tiny_checkpoint, "--formats", "onnx", "--precisions", "palettized")
    assert none.exit_code == 2 and "--precisions palettized: none of onnx has it" in none.output
    artifacts_only = run("compare", "--model", tiny_checkpoint, "--artifact", onnx_artifact, "--precisions", "fp16")
    assert artifacts_only.exit_code == 2 and "applies to --formats" in artifacts_only.output
    some = run(
        "compare", "--model", tiny_checkpoint, "--size", 64, "--formats", "onnx", "--precisions", "fp32,int8-weights"
    )
    assert some.exit_code == 2, some.output  # int8-weights is Core ML's, and onnx is the only format asked
    mixed = run(
        "compare",
        "--model",
        tiny_checkpoint,
        "--size",
        64,
        "--formats",
        "onnx,coreml",
        "--precisions",
        "fp32,palettized",
    )
    assert mixed.exit_code == 0, mixed.output
    assert "SKIP  onnx      palettized" in mixed.output and "onnx has no palettized" in mixed.output
    assert "PASS  onnx      fp32" in mixed.output


@pytest.mark.parametrize(
    ("out", "code", "reason"),
    [
        ("", 2, "give the artifact a file name"),
        ("folder/", 2, "give the artifact a file name"),
        (".", 1, "names a folder"),
        ("m.tflite", 1, "onnx artifacts' names end in .onnx"),
        ("bad\udcff.onnx", 1, "bad\\xff.onnx: a name that is not UTF-8"),
        ("a" * 251 + ".onnx", 1, "a name longer than 255 bytes"),
    ],
)
def test_export_refuses_a_destination_it_could_not_use_before_any_work(
    tiny_checkpoint, tmp_path, monkeypatch, out, code, reason
):
    monkeypatch.chdir(tmp_path)
    result = run("export", "--model", tiny_checkpoint, "--out", out, "--force")
    assert result.exit_code == code and reason in result.output, result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_export_force_replaces_only_an_artifact_of_its_format(tiny_checkpoint, tmp_path):
    pytest.importorskip("openvino")
    folder = tmp_path / "mine_openvino"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"keep")
    refused = run("export", "--model", tiny_checkpoint, "--format", "openvino", "--out", folder, "--force")
    assert refused.exit_code == 1 and "is not an edge-colorizer openvino artifact" in refused.output
    assert [p.name for p in folder.iterdir()] == ["photo.jpg"]
    a_file = tmp_path / "file.onnx"
    a_file.mkdir()
    kind = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", a_file, "--force")
    assert kind.exit_code == 1 and "exists and is not a file as the artifact is" in kind.output
    made = run(
        "export", "--model", tiny_checkpoint, "--size", 64, "--format", "openvino", "--out", tmp_path / "m_openvino"
    )
    assert made.exit_code == 0, made.output
    again = run(
        "export",
        "--model",
        tiny_checkpoint,
        "--size",
        64,
        "--format",
        "openvino",
        "--out",
        tmp_path / "m_openvino",
        "--force",
    )
    assert again.exit_code == 0, again.output


def test_compare_fails_an_artifact_with_odd_metadata_and_goes_on(onnx_artifact, tiny_checkpoint, tmp_path):
    import onnx

    paths = []
    for key, value in (("network_size", "100"), ("precision", "int4")):
        model = onnx.load(str(onnx_artifact))
        next(p for p in model.metadata_props if p.key == key).value = value
        paths.append(tmp_path / f"odd_{key}.onnx")
        onnx.save(model, str(paths[-1]))
    result = run(
        "compare",
        "--model",
        tiny_checkpoint,
        *(a for p in paths for a in ("--artifact", p)),
        "--artifact",
        onnx_artifact,
    )
    rows = [line for line in result.output.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert result.exit_code == 1 and "Traceback" not in result.output and len(rows) == 3, result.output
    assert rows[0].startswith("FAIL") and "network size in its metadata" in rows[0]
    assert rows[1].startswith("FAIL") and "precision 'int4' unknown to this version" in rows[1]
    assert rows[2].startswith("PASS")


def test_export_chroma_gain_is_baked_in_recorded_and_checked_by_compare(onnx_artifact, tiny_checkpoint, tmp_path):
    import json

    import onnx

    from runtimes.export import read_artifact_metadata
    from runtimes.formats import FORMATS

    gained = tmp_path / "gained.onnx"
    result = run("export", "--model", tiny_checkpoint, "--size", 64, "--chroma-gain", 1.5, "--out", gained)
    assert result.exit_code == 0 and "parity vs torch: max" in result.output, result.output
    decoder = json.loads(read_artifact_metadata(FORMATS["onnx"], gained)["decoder"])
    assert decoder["chroma_gain"] == 1.5 and decoder["temperature"] > 0
    assert json.loads(read_artifact_metadata(FORMATS["onnx"], onnx_artifact)["decoder"])["chroma_gain"] == 1.0
    # compare rebuilds the reference at the artifact's gain: the gained file passes against its checkpoint
    ok = run("compare", "--model", tiny_checkpoint, "--artifact", gained)
    assert ok.exit_code == 0 and ok.output.count("PASS") == 1, ok.output
    # a gain the metadata claims but the graph lacks fails parity; a gain that is no number is named
    paths = []
    for value in ("2.0", '{"chroma_gain": "abc"}'):
        model = onnx.load(str(gained))
        prop = next(p for p in model.metadata_props if p.key == "decoder")
        prop.value = json.dumps({"chroma_gain": float(value)}) if value[0] != "{" else value
        paths.append(tmp_path / f"odd{len(paths)}.onnx")
        onnx.save(model, str(paths[-1]))
    bad = run("compare", "--model", tiny_checkpoint, *(a for p in paths for a in ("--artifact", p)))
    rows = [line for line in bad.output.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert bad.exit_code == 1 and "Traceback" not in bad.output and len(rows) == 2, bad.output
    assert rows[0].startswith("FAIL") and rows[1].startswith("FAIL") and "chroma gain in its metadata" in rows[1]
    for value in ("0", "nan", "3"):
        refused = run("export", "--model", tiny_checkpoint, "--chroma-gain", value, "--out", tmp_path / "r.onnx")
        assert refused.exit_code == 2 and "--chroma-gain" in refused.output
    assert not (tmp_path / "r.onnx").exists()


def test_compare_takes_the_recorded_model_goes_on_past_a_missing_artifact_and_stops_cleanly(
    tiny_checkpoint, tmp_path, monkeypatch
):
    import signal

    import runtimes.compare
    from edge_colorizer.inference import BUNDLED
    from edge_colorizer.stopping import record_stop

    monkeypatch.setitem(BUNDLED, "tiny-bundled", tiny_checkpoint)
    artifact = tmp_path / "t.onnx"
    assert run("export", "--model", "tiny-bundled", "--size", 64, "--out", artifact).exit_code == 0
    # no --model: the artifact's own source is the reference (was: the default model, a certain failure)
    nothing = tmp_path / "no-photos"
    nothing.mkdir()  # --calibration is not read for artifacts (it would fail: no photos)
    result = run(
        "compare", "--artifact", tmp_path / "gone.onnx", "--artifact", artifact, "--size", 64, "--calibration", nothing
    )
    rows = [line for line in result.output.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert result.exit_code == 1 and "reference: tiny-bundled" in result.stderr, result.output
    assert rows[0].startswith("FAIL") and "gone.onnx; no such file or folder" in rows[0]
    assert rows[1].startswith("PASS") and "note: --size and --calibration apply to --formats only" in result.stderr

    def stopped(*args, **kwargs):
        raise record_stop(signal.SIGINT)  # what Ctrl-C raises under the command's handler

    monkeypatch.setattr(runtimes.compare, "compare_formats", stopped)
    result = run("compare", "--model", tiny_checkpoint, "--formats", "onnx")
    assert result.exit_code == 130 and "stopped by SIGINT; unfinished outputs were removed" in result.stderr


def test_export_names_a_wrong_suffix_before_an_existing_file_and_never_replaces_a_bundled_model(
    tiny_checkpoint, tmp_path, monkeypatch
):
    from edge_colorizer.inference import BUNDLED

    existing = tmp_path / "s.onnx"
    existing.write_bytes(b"someone's model")
    wrong = run("export", "--model", tiny_checkpoint, "--format", "tflite", "--out", existing)
    assert wrong.exit_code == 1 and "tflite artifacts' names end in .tflite" in wrong.output  # not "pass --force"
    bundled = tmp_path / "bundled_int8.onnx"
    bundled.write_bytes(b"the package's own")
    monkeypatch.setitem(BUNDLED, "student-int8", bundled)
    refused = run("export", "--model", tiny_checkpoint, "--size", 64, "--out", bundled, "--force")
    assert refused.exit_code == 1 and "is the bundled model 'student-int8'" in refused.output
    assert existing.read_bytes() == b"someone's model" and bundled.read_bytes() == b"the package's own"


def test_export_says_when_calibration_photos_are_not_used(tiny_checkpoint, tmp_path, monkeypatch):
    import runtimes.export

    monkeypatch.setattr(runtimes.export, "load_calibration", lambda *a, **k: pytest.fail("photos were read"))
    result = run(
        "export", "--model", tiny_checkpoint, "--size", 64, "--calibration", tmp_path, "--out", tmp_path / "m.onnx"
    )
    assert result.exit_code == 0 and "note: --calibration is not used: onnx fp32 needs no calibration photos" in (
        result.stderr
    )


def test_like_artifact_names_settings_of_the_wrong_type(tiny):
    from runtimes.compare import like_artifact

    assert like_artifact(tiny, {"network_size": "64"}) is tiny
    for meta, reason in (
        ({"network_size": [64]}, "network size in its metadata"),
        ({"decoder": {"chroma_gain": 1.2}}, "decoder settings in its metadata are not a JSON object"),
        ({"decoder": '{"chroma_gain": "x"}'}, "chroma gain in its metadata: 'x' is not a number > 0"),
    ):
        with pytest.raises(ValueError, match=reason):
            like_artifact(tiny, meta)
