"""TensorRT: what can be checked without it runs everywhere (the ONNX graph's parsability is checked in
test_onnx.py for every precision); building and running engines needs tensorrt and a GPU."""

import json

import numpy as np
import pytest
import torch

from runtimes.formats import FORMATS
from runtimes.tensorrt import ShapeProfile, sidecar

TOLERANCES = FORMATS["tensorrt"].tolerances


def test_profile_spans_gray_to_rgb_and_small_to_large():
    low, opt, high = ShapeProfile(max_batch=2, max_side=1920).shapes()
    assert low == (1, 16, 16, 1) and opt == (1, 720, 1280, 3) and high == (2, 1920, 1920, 3)
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile(max_side=1024)  # the 1280-wide optimum would not fit


def test_metadata_sidecar_sits_beside_the_engine(tmp_path):
    assert sidecar(tmp_path / "m.engine") == tmp_path / "m.engine.json"


@pytest.mark.slow
def test_the_bundled_students_graph_is_parsable_by_tensorrt(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from edge_colorizer.inference import load_colorizer
    from runtimes.onnx import export
    from runtimes.tensorrt_onnx_support import tensorrt_problems

    result = export(load_colorizer("student"), tmp_path / "student.onnx", "fp16")
    assert tensorrt_problems(onnx.load(str(result.path))) == []


@pytest.fixture
def trt():
    module = pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA device")
    return module


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("strongly_typed", [True, False])
def test_engine_builds_runs_and_matches_torch(trt, tiny, tmp_path, calibration, precision, strongly_typed):
    from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TorchRunner, compare
    from runtimes.tensorrt import TensorRTRunner, export, read_metadata

    cache = tmp_path / "timing.cache"
    profile = ShapeProfile(max_batch=2, opt_height=128, opt_width=128, max_side=512)
    result = export(
        tiny,
        tmp_path / "m.engine",
        precision,
        calibration if precision == "int8" else None,
        "tiny",
        timing_cache=cache,
        profile=profile,
        strongly_typed=strongly_typed,
    )
    assert result.parity.within(*TOLERANCES[precision]) and cache.stat().st_size > 0
    meta = read_metadata(result.path)
    assert meta["precision"] == precision and json.loads(meta["profile"])["max_side"] == 512
    with TensorRTRunner(result.path) as runner, TorchRunner(tiny) as ref:
        gray = np.zeros((2, 300, 200, 1), np.uint8)
        assert runner.infer({INPUT_NAME: gray})[OUTPUT_NAME].shape == (2, 300, 200, 3)
        assert compare(ref, runner).within(*TOLERANCES[precision])
        with pytest.raises(RuntimeError, match="outside the engine's profile"):
            runner.infer({INPUT_NAME: np.zeros((1, 600, 600, 3), np.uint8)})
