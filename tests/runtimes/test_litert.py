import hashlib
import json
import re

import numpy as np
import pytest
import torch

from edge_colorizer.colorizer import ColorizerModule
from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TensorMeta, TorchRunner

pytest.importorskip("ai_edge_litert")
pytest.importorskip("ai_edge_quantizer")
pytest.importorskip("litert_torch")

from runtimes import litert  # noqa: E402
from runtimes.artifacts import ExportError  # noqa: E402

SHAPE = (1, 64, 80, 3)
TOLERANCES = FORMATS["tflite"].tolerances


def calibration_images() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 255, 70 * 90).reshape(70, 90).astype(np.uint8)
    return [
        rng.integers(0, 256, (90, 70, 3), dtype=np.uint8),
        ramp,
        rng.integers(0, 256, (2, 64, 80, 1), dtype=np.uint8),
    ]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, tiny, tiny_checkpoint):
    """One real litert-torch conversion (the slow part, ~40 s on 2 cores); its flatbuffer is reused below."""
    colorizer = tiny
    graphs = []
    convert = litert._convert

    def spy(*args):
        graphs.append(convert(*args))
        return graphs[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(litert, "_convert", spy)
        path = tmp_path_factory.mktemp("litert") / "m.tflite"
        exported = litert.export(colorizer, path, model_name="tiny", checkpoint=tiny_checkpoint, shape=SHAPE)
    return colorizer, exported, graphs[0]


@pytest.fixture
def converted(monkeypatch, fp32):
    """Later exports reuse the fixture's conversion: they test quantization, gating and metadata."""
    monkeypatch.setattr(litert, "_convert", lambda module, shape: fp32[2])
    return fp32[0]


def test_fp32_matches_torch_at_its_fixed_shape(fp32):
    colorizer, exported, _ = fp32
    assert exported.parity.within(*TOLERANCES["fp32"])
    with litert.Runner(exported.path, threads=1) as runner:
        assert runner.threads == 1
        assert runner.inputs == [TensorMeta(INPUT_NAME, "uint8", SHAPE)]
        x = np.random.default_rng(0).integers(0, 256, SHAPE, dtype=np.uint8)
        out = runner.infer({INPUT_NAME: x})[OUTPUT_NAME]
    assert out.shape == SHAPE and out.dtype == np.uint8
    with TorchRunner(colorizer) as reference:
        diff = np.abs(out.astype(int) - reference.infer({INPUT_NAME: x})[OUTPUT_NAME].astype(int))
    assert diff.max() <= TOLERANCES["fp32"][0]


def test_metadata_is_in_the_file(fp32, tiny_checkpoint):
    _, exported, _ = fp32
    meta = litert.read_metadata(exported.path)
    assert meta["checkpoint_sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert meta == exported.metadata
    assert meta["format"] == "tflite" and meta["precision"] == "fp32" and meta["model"] == "tiny"
    assert json.loads(meta["shape"]) == list(SHAPE) and json.loads(meta["input"])["shape"] == list(SHAPE)
    assert json.loads(meta["lab"])["ab_norm"] == 110.0
    assert "XNNPACK" in meta["runtime"] and meta["quantization"] == "none"
    assert int(meta["parity_max"]) == exported.parity.max_abs
    # the shape is known before the interpreter is created (the benchmark plans its inputs from it)
    assert litert.Runner(exported.path).inputs[0].shape == SHAPE


def test_runner_refuses_other_shapes(fp32):
    _, exported, _ = fp32
    with litert.Runner(exported.path) as runner:
        for bad in (
            np.zeros((1, 64, 64, 3), np.uint8),
            np.zeros((1, 64, 80, 1), np.uint8),
            np.zeros(SHAPE, np.float32),
        ):
            with pytest.raises(ValueError, match=r"exported for uint8 \(1, 64, 80, 3\) only"):
                runner.infer({INPUT_NAME: bad})


def test_colorize_with_a_fixed_shape_artifact_names_the_photo_and_the_shape_to_export(fp32, tmp_path):
    from PIL import Image

    from edge_colorizer.inference import colorize_files
    from runtimes.models import open_colorizer

    _, exported, _ = fp32
    fits, other = tmp_path / "fits.png", tmp_path / "other.png"
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(fits)  # 64x80 (HxW), the artifact's shape
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(other)
    said = []
    colorizer = open_colorizer(str(exported.path))
    try:
        report = colorize_files([str(fits), str(other)], tmp_path / "out", colorizer, on_error=said.append)
    finally:
        colorizer.close()
    assert len(report.written) == 1 and said == [
        f"{other}: 48x64 px (HxW), and m.tflite takes 64x80 only (a fixed-shape tflite export; "
        "export one with --shape 48x64)"
    ]


@pytest.mark.parametrize("precision", ["fp16", "int8-dynamic", "int8"])
def test_quantized_precisions_pass_parity_and_shrink(tmp_path, converted, fp32, precision):
    exported = litert.export(
        converted, tmp_path / f"{precision}.tflite", precision, calibration=calibration_images(), shape=SHAPE
    )
    assert exported.parity.within(*TOLERANCES[precision])
    assert exported.path.stat().st_size < 0.7 * fp32[1].path.stat().st_size
    meta = litert.read_metadata(exported.path)
    assert meta["precision"] == precision and meta["quantization"] == litert.QUANTIZATION[precision]
    assert meta["calibration_images"] == ("4" if precision == "int8" else "0")  # the gray pair is two images


def test_int8_quantizes_the_network_only(tmp_path, converted):
    from ai_edge_litert.interpreter import Interpreter

    path = litert.export(converted, tmp_path / "q.tflite", "int8", calibration=calibration_images(), shape=SHAPE).path
    tensors = Interpreter(model_path=str(path)).get_tensor_details()
    inside = [t for t in tensors if re.search(litert.NETWORK_SCOPE, t["name"])]
    outside = [t for t in tensors if t not in inside]
    assert sum(np.dtype(t["dtype"]) == np.int8 for t in inside) > 10
    # outside the network: float Lab math, the uint8 ends, int32 shapes, and the one quantize op feeding the net
    stray = [
        t["name"]
        for t in outside
        if np.dtype(t["dtype"]) in (np.int8, np.int16) and not t["name"].endswith("_quantized")
    ]
    assert stray == []
    assert sum(np.dtype(t["dtype"]) == np.float32 for t in outside) > 50


def test_int8_needs_calibration_and_shapes_are_checked(tmp_path, tiny):
    colorizer = tiny
    with pytest.raises(ValueError, match="calibration"):
        litert.export(colorizer, tmp_path / "q.tflite", "int8", shape=SHAPE)
    for bad in ((1, 64, 80, 2), (2, 64, 80, 3), (1, 8, 80, 3), (64, 80, 3)):
        with pytest.raises(ValueError, match="shape must be"):
            litert.export(colorizer, tmp_path / "s.tflite", shape=bad)
    with pytest.raises(ValueError, match="unknown precision"):
        litert.export(colorizer, tmp_path / "p.tflite", "int4", shape=SHAPE)
    assert list(tmp_path.iterdir()) == []


class ConstantAB(torch.nn.Module):
    """A network that colours everything the same strong colour: the tiny graph's output is far from it."""

    def forward(self, l_norm):
        return torch.full_like(l_norm, 0.4).expand(-1, 2, -1, -1)


def test_parity_failure_fails_the_export_and_leaves_nothing(tmp_path, converted):
    with pytest.raises(ExportError, match="parity check failed"):
        litert.export(ColorizerModule(ConstantAB(), size=64), tmp_path / "bad.tflite", shape=SHAPE)
    assert list(tmp_path.iterdir()) == []


def test_a_conversion_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, tiny):
    def fail(module, shape):
        raise RuntimeError("Verification failed:\nerror: unknown op")

    monkeypatch.setattr(litert, "_convert", fail)
    with pytest.raises(ExportError, match=r"bad\.tflite: LiteRT conversion failed \(ColorizerModule: RuntimeError"):
        litert.export(tiny, tmp_path / "bad.tflite", shape=SHAPE)
    assert list(tmp_path.iterdir()) == []


def test_the_portable_graph_stands_in_when_the_colorizer_fails_to_convert(tmp_path, monkeypatch, fp32):
    def convert(module, shape):
        if isinstance(module, ColorizerModule):
            raise TypeError("_aten_add_tensor() got an unexpected keyword argument 'alpha'")
        return fp32[2]

    monkeypatch.setattr(litert, "_convert", convert)
    exported = litert.export(fp32[0], tmp_path / "p.tflite", shape=SHAPE)
    assert exported.metadata["graph"] == "runtimes.portable.Uint8Colorizer"
    assert exported.metadata["graph_fallback"].startswith("ColorizerModule: TypeError: _aten_add_tensor()")
    assert fp32[1].metadata["graph"] == "ColorizerModule" and fp32[1].metadata["graph_fallback"] == ""


@pytest.mark.slow
def test_bundled_student_at_256_in_fp32(tmp_path):
    from edge_colorizer.inference import load_colorizer

    exported = litert.export(load_colorizer("student"), tmp_path / "student.tflite", model_name="student")
    assert exported.parity.within(*TOLERANCES["fp32"])
    assert litert.Runner(exported.path).inputs[0].shape == litert.DEFAULT_SHAPE


def test_export_artifact_passes_the_fixed_shape_through_the_table(tmp_path, converted):
    from runtimes.export import export_artifact

    exported = export_artifact(converted, "tflite", tmp_path / "s.tflite", "fp32", shape=(64, 80))
    assert litert.Runner(exported.path).inputs[0].shape == SHAPE
    assert exported.parity.max_abs <= TOLERANCES["fp32"][0]


def test_a_truncated_file_is_named_in_words(fp32, tmp_path):
    from runtimes.artifacts import ExportError
    from runtimes.litert import read_metadata

    _, exported, _ = fp32
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(exported.path.read_bytes()[: exported.path.stat().st_size // 3])
    with pytest.raises(ExportError, match=r"cut.tflite: truncated, damaged or not a TFLite file"):
        read_metadata(cut)
