import json

import numpy as np
import pytest
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.models import create_model
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TorchRunner, compare

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from runtimes.onnx import OrtRunner, export_onnx, read_metadata  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    colorizer = ColorizerModule(create_model("unet_s", width=8).eval(), size=64)
    path, parity = export_onnx(colorizer, tmp_path_factory.mktemp("onnx") / "m.onnx", model_name="tiny")
    return colorizer, path, parity


def test_export_is_dynamic_and_matches_torch(exported):
    colorizer, path, parity = exported
    assert parity.max_abs <= 2 and parity.mean_abs <= 0.05
    graph = onnx.load(str(path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "height", "width", "channels"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_gray_and_rgb_inputs_of_any_size(exported):
    colorizer, path, _ = exported
    rng = np.random.default_rng(3)
    with OrtRunner(path) as runner, TorchRunner(colorizer) as ref:
        gray = rng.integers(0, 256, (1, 33, 171, 1), dtype=np.uint8)
        out = runner.infer({INPUT_NAME: gray})[OUTPUT_NAME]
        assert out.shape == (1, 33, 171, 3) and out.dtype == np.uint8
        inputs = [gray, rng.integers(0, 256, (3, 300, 200, 3), dtype=np.uint8)]
        parity = compare(ref, runner, inputs)
    assert parity.within(2, 0.05)


def test_metadata_describes_the_artifact(exported):
    _, path, _ = exported
    meta = read_metadata(path)
    assert meta["model"] == "tiny" and meta["precision"] == "fp32" and meta["network_size"] == "64"
    assert json.loads(meta["input"])["dtype"] == "uint8"
    assert json.loads(meta["lab"])["ab_norm"] == 110.0
    assert "checkpoint_sha256" in meta


class Drifting(torch.nn.Module):
    """Behaves differently under tracing than in eager mode, to provoke a parity failure."""

    def forward(self, l_norm):
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return torch.full_like(l_norm, 0.5).expand(-1, 2, -1, -1)
        return torch.zeros_like(l_norm).expand(-1, 2, -1, -1)


def test_parity_failure_fails_the_export_and_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="parity check failed"):
        export_onnx(ColorizerModule(Drifting(), size=32), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_simplifier_that_breaks_the_graph_is_dropped(tmp_path, monkeypatch, exported):
    import runtimes.onnx as onnx_mod
    from edge_colorizer.colorizer import GrayBaseline

    colorizer, _, _ = exported
    wrong_path, _ = export_onnx(ColorizerModule(GrayBaseline(), size=64), tmp_path / "gray.onnx")
    wrong = onnx.load(str(wrong_path))  # a valid graph with the wrong behaviour
    monkeypatch.setattr(onnx_mod, "_simplified", lambda model: wrong)
    path, parity = export_onnx(colorizer, tmp_path / "m.onnx")
    assert read_metadata(path)["simplifier"] == "none" and parity.within(2, 0.05)
