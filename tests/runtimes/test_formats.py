import pytest

from runtimes.export import check_request, export_artifact
from runtimes.formats import FORMATS, RUNTIMES, Format, format_for_runtime, get_format, load_format_module


def test_the_table_is_consistent():
    for fmt in FORMATS.values():
        assert fmt.precisions and set(fmt.tolerances) == set(fmt.precisions), fmt.name
        assert set(fmt.calibrated) <= set(fmt.precisions) and fmt.module == f"runtimes.{fmt.module.split('.')[-1]}"
        assert all(m >= 0 and mean >= 0 for m, mean in fmt.tolerances.values())
        assert RUNTIMES[fmt.runtime] is fmt and format_for_runtime(fmt.runtime) is fmt
    assert RUNTIMES["torch"] is None and format_for_runtime("torch") is None


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="onnx, openvino"):
        get_format("foo")
    with pytest.raises(KeyError, match="torch, onnxruntime"):
        format_for_runtime("foo")


def test_a_missing_sdk_names_the_extra_to_install():
    fake = Format("fake", ".fake", ("fp32",), "runtimes.fake", "fake", "fakeextra", "no_such_sdk_for_edge_colorizer")
    with pytest.raises(ImportError, match=r"pip install 'edge-colorizer\[fakeextra\]'") as info:
        load_format_module(fake)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["onnx", "openvino", "tensorrt"])
def test_every_format_module_has_the_interface(name):
    import importlib
    import inspect

    module = importlib.import_module(FORMATS[name].module)  # importable without the SDK
    params = list(inspect.signature(module.export).parameters)
    assert params[:6] == ["colorizer", "out", "precision", "calibration", "model_name", "checkpoint"]
    assert "force" in params and hasattr(module, "Runner") and hasattr(module, "read_metadata")


def test_requests_are_checked_against_the_table():
    with pytest.raises(ValueError, match="has no precision 'int4'"):
        check_request(FORMATS["onnx"], "int4", None)
    with pytest.raises(ValueError, match="needs calibration images"):
        check_request(FORMATS["openvino"], "int8", None)
    check_request(FORMATS["onnx"], "fp16", None)


def test_tensorrt_without_a_gpu_says_where_to_build(tiny, tmp_path, monkeypatch):
    import torch

    from runtimes.artifacts import ExportError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ExportError, match="Jetson recipe"):
        export_artifact(tiny, "tensorrt", tmp_path / "m.engine", "fp16")
    assert list(tmp_path.iterdir()) == []


def test_a_fixed_shape_is_refused_by_formats_that_take_any_size(tmp_path):
    from click.testing import CliRunner

    from edge_colorizer.cli import main

    with pytest.raises(ValueError, match="take any image size"):
        export_artifact(None, "onnx", tmp_path / "m.onnx", "fp32", shape=(64, 80))
    result = CliRunner().invoke(main, ["export", "--format", "onnx", "--shape", "64x80", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--shape" in result.output and not (tmp_path / "m").exists()
    result = CliRunner().invoke(main, ["export", "--format", "tflite", "--shape", "8x8", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "H, W from 16 to 8192" in result.output
    result = CliRunner().invoke(main, ["export", "--format", "tflite", "--shape", "99999x99999", "--out", "m.tflite"])
    assert result.exit_code == 2 and "got '99999x99999'" in result.output


def test_calibration_skips_a_photo_it_cannot_read_in_one_line_and_needs_one_it_can(tmp_path):
    import numpy as np
    from PIL import Image

    from runtimes.export import load_calibration

    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    lines = []
    images = load_calibration(tmp_path, log=lines.append)
    assert len(images) == 1 and images[0].shape == (40, 60, 3)
    assert len(lines) == 1 and lines[0].startswith("skip calibration photo ") and "b.png" in lines[0]
    (tmp_path / "a.png").unlink()
    with pytest.raises(ValueError, match="no calibration images found"):
        load_calibration(tmp_path, log=lines.append)
