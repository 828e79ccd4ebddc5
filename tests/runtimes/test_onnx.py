import json

import numpy as np
import pytest
import torch

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from runtimes.artifacts import ExportError
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TorchRunner, compare

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from runtimes.onnx import OrtRunner, export, network_nodes, node_scopes, quantizable, read_metadata  # noqa: E402
from runtimes.tensorrt_onnx_support import tensorrt_problems  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory, calibration):
    folder = tmp_path_factory.mktemp("onnx")
    return {
        p: export(tiny, folder / f"m_{p}.onnx", p, calibration, model_name="tiny") for p in ("fp32", "fp16", "int8")
    }


def test_export_is_dynamic_and_matches_torch(exported):
    fp32 = exported["fp32"]
    assert fp32.parity.within(2, 0.05)
    graph = onnx.load(str(fp32.path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "height", "width", "channels"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_gray_and_rgb_inputs_of_any_size(exported, tiny):
    rng = np.random.default_rng(3)
    with OrtRunner(exported["fp32"].path) as runner, TorchRunner(tiny) as ref:
        assert runner.inputs[0].dynamic_axes == (0, 1, 2, 3) and runner.inputs[0].dtype == "uint8"
        gray = rng.integers(0, 256, (1, 33, 171, 1), dtype=np.uint8)
        out = runner.infer({INPUT_NAME: gray})[OUTPUT_NAME]
        assert out.shape == (1, 33, 171, 3) and out.dtype == np.uint8
        parity = compare(ref, runner, [gray, rng.integers(0, 256, (3, 300, 200, 3), dtype=np.uint8)])
        # idle worker threads sleep: spinning ones took half of 2 cores from whatever ran next
        options = runner.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert parity.within(2, 0.05)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_the_lab_lookups_are_gather_elements_on_int32_indices(exported, precision):
    # ONNX Runtime's Gather is ~6x slower per index than GatherElements; the parity above holds with them
    model = onnx.load(str(exported[precision].path))
    graph = model.graph
    tables = {t.name for t in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    lookups = [n for n in graph.node if n.op_type == "GatherElements" and n.input[0] in tables]
    assert len(lookups) >= 3  # Y, f(Y), the sRGB codes
    typed = onnx.shape_inference.infer_shapes(model).graph  # a new model: the loaded one is left as it is
    types = {v.name: v.type.tensor_type.elem_type for v in [*typed.input, *typed.value_info, *typed.output]}
    assert {types.get(n.input[1]) for n in lookups} == {onnx.TensorProto.INT32}  # no int64 copy of the indices


def _lookup_graph(nodes, inputs, outputs, opset=18):
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 3, "table")
    values = {
        "i": TensorProto.INT32,
        "i64": TensorProto.INT64,
        "y": TensorProto.FLOAT,
        "c": TensorProto.BOOL,
        "o": TensorProto.INT64,
    }
    info = [helper.make_tensor_value_info(n, values[n], shape) for n, shape in [*inputs, *outputs]]
    graph = helper.make_graph(nodes, "lookup", info[: len(inputs)], info[len(inputs) :], [table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def _lookup_cases():
    from onnx import TensorProto, helper

    cast = helper.make_node("Cast", ["i"], ["i64"], to=TensorProto.INT64)
    gather = helper.make_node("Gather", ["table", "i64"], ["y"])
    branch = helper.make_graph(
        [helper.make_node("Identity", ["i64"], ["t"])],
        "b",
        [],
        [helper.make_tensor_value_info("t", TensorProto.INT64, [4])],
    )
    read_in_if = helper.make_node("If", ["c"], ["o"], then_branch=branch, else_branch=branch)
    i, y = ("i", [4]), ("y", [4])
    return {  # name: (model, the op types after the rewrite)
        "cast and gather": (_lookup_graph([cast, gather], [i], [y]), ["GatherElements"]),
        "cast also a graph output": (_lookup_graph([cast, gather], [i], [y, ("i64", [4])]), ["Cast", "GatherElements"]),
        "cast read in a subgraph": (
            _lookup_graph([cast, gather, read_in_if], [i, ("c", [])], [y, ("o", [4])]),
            ["Cast", "GatherElements", "If"],
        ),
        "2-D indices": (
            _lookup_graph(
                [helper.make_node("Cast", ["i"], ["i64"], to=TensorProto.INT64), gather],
                [("i", [2, 2])],
                [("y", [2, 2])],
            ),
            ["Gather"],
        ),
        "opset 10": (_lookup_graph([cast, gather], [i], [y], opset=10), ["Cast", "Gather"]),
    }


@pytest.mark.parametrize("case", sorted(_lookup_cases()))
def test_cheap_lookups_keeps_values_and_what_others_read(case):
    import copy

    import onnxruntime as ort

    from runtimes.onnx import cheap_lookups

    model, after = _lookup_cases()[case]
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    feeds = {"i": np.array([0, 3, -1, 9], np.int32).reshape(shape)}
    if len(model.graph.input) > 1:
        feeds["c"] = np.array(True)
    before = copy.deepcopy(model)
    cheap_lookups(model)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == after
    if case == "opset 10":
        assert model == before
        return

    def run(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)

    for old, new in zip(run(before), run(model), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precisions_stay_within_the_table(exported, tiny, precision):
    from runtimes.formats import FORMATS

    result = exported[precision]
    assert result.parity.within(*FORMATS["onnx"].tolerances[precision])
    with OrtRunner(result.path) as runner, TorchRunner(tiny) as ref:
        out = runner.infer({INPUT_NAME: np.full((1, 40, 56, 3), 128, np.uint8)})[OUTPUT_NAME]
        assert out.shape == (1, 40, 56, 3)
        # a different photo-like input than the export gate's: still within tolerance
        assert compare(ref, runner, [np.random.default_rng(9).integers(0, 256, (1, 77, 91, 3), np.uint8)]).within(
            *FORMATS["onnx"].tolerances[precision]
        )


def test_fp16_runs_the_network_in_half_and_the_lab_math_in_float(exported):
    graph = onnx.load(str(exported["fp16"].path)).graph
    halves = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    conv_weights = [n.input[1] for n in graph.node if n.op_type == "Conv"]
    assert conv_weights and all(w in halves for w in conv_weights)
    # everything outside the network (the Lab kernel, the resizes, the uint8 conversions) computes in fp32
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(exported["fp16"].path))).graph
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.value_info}
    outside = [types.get(o) for n in graph.node if node_scopes(n)[:1] != ["net"] for o in n.output]
    assert onnx.TensorProto.FLOAT in outside and onnx.TensorProto.FLOAT16 not in outside


def test_int8_quantizes_only_the_network_layers(exported):
    model = onnx.load(str(exported["int8"].path))
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    int8_weights = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dequantized]
    assert int8_weights and all(quantizable(node_scopes(n)) for n in int8_weights)
    # an operation runs in int8 when its inputs are dequantized and its output quantized again: none of
    # those is outside the network's layers (the Lab kernel, the resizes, the ab decoding stay fp32)
    int8_ops = [
        n
        for n in model.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and set(n.input) & dequantized
        and set(n.output) & quantized
    ]
    assert int8_ops and all(quantizable(node_scopes(n)) for n in int8_ops)
    decode = [n for n in model.graph.node if node_scopes(n) == ["net"] and n.op_type in ("Exp", "ReduceMax", "Conv")]
    assert len(decode) == 3 and not any(n.input[-1] in dequantized for n in decode if n.op_type == "Conv")
    head = [n for n in model.graph.node if node_scopes(n)[:2] == ["net", "head"] and n.op_type == "Conv"]
    assert len(head) == 1 and head[0].input[1] not in dequantized  # the logits' conv stays float
    meta = read_metadata(exported["int8"].path)
    assert meta["precision"] == "int8" and meta["calibration_images"] == "4" and int(meta["quantized_nodes"]) > 10


def test_int8_needs_calibration(tiny, tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        export(tiny, tmp_path / "x.onnx", "int8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_parser_accepts_the_exported_graph(exported, precision):
    """On every machine: only operators, opsets and types TensorRT's ONNX parser supports."""
    assert tensorrt_problems(onnx.load(str(exported[precision].path))) == []


def test_tensorrt_check_finds_what_the_parser_refuses():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),  # on uint8: refused
        helper.make_node("Cast", ["t"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("NonZero", ["f"], ["nz"]),
        helper.make_node("Unique", ["f"], ["y"]),  # not supported at all
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 26)])
    problems = " | ".join(tensorrt_problems(model))
    assert "opset 26" in problems and "Unique" in problems and "Transpose" in problems and "UINT8" in problems


def test_metadata_describes_the_artifact(exported):
    meta = read_metadata(exported["fp32"].path)
    assert meta["model"] == "tiny" and meta["precision"] == "fp32" and meta["network_size"] == "64"
    assert meta["format"] == "onnx" and meta["exporter"] == "torchscript" and meta["simplifier"] == "onnxsim"
    assert json.loads(meta["input"])["dtype"] == "uint8"
    assert json.loads(meta["lab"])["ab_norm"] == 110.0
    assert "checkpoint_sha256" in meta and int(meta["parity_max"]) <= 2


class Drifting(torch.nn.Module):
    """Behaves differently under tracing than in eager mode, to provoke a parity failure."""

    def forward(self, l_norm):
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            return torch.full_like(l_norm, 0.5).expand(-1, 2, -1, -1)
        return torch.zeros_like(l_norm).expand(-1, 2, -1, -1)


def test_parity_failure_fails_the_export_and_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match="parity check failed"):
        export(ColorizerModule(Drifting(), size=32), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_simplifier_that_breaks_the_graph_is_dropped(tmp_path, monkeypatch, tiny):
    import runtimes.onnx as onnx_mod

    wrong = onnx.load(str(export(ColorizerModule(GrayBaseline(), size=64), tmp_path / "gray.onnx").path))
    monkeypatch.setattr(onnx_mod, "_simplified", lambda model: wrong)  # a valid graph with the wrong behaviour
    result = export(tiny, tmp_path / "m.onnx")
    assert read_metadata(result.path)["simplifier"] == "none" and result.parity.within(2, 0.05)


def test_an_exporter_that_fails_falls_back_and_says_so(tmp_path, monkeypatch, tiny):
    import runtimes.onnx as onnx_mod

    real = onnx_mod._to_onnx

    def dynamo_breaks(colorizer, exporter):
        if exporter == "dynamo":
            raise RuntimeError("cannot decompose (test)")
        return real(colorizer, exporter)

    monkeypatch.setattr(onnx_mod, "_to_onnx", dynamo_breaks)
    meta = export(tiny, tmp_path / "m.onnx", exporter="auto").metadata
    assert (
        meta["exporter"] == "torchscript"
        and "dynamo: RuntimeError: cannot decompose (test)" in meta["exporter_fallback"]
    )


def test_network_nodes_come_from_module_paths(exported):
    model = onnx.load(str(exported["fp32"].path))
    inside = set(network_nodes(model))
    assert inside and all(n.startswith("/net/") for n in inside)
    assert not any(n.op_type in ("Pow", "MatMul", "CumSum") for n in model.graph.node if n.name in inside)


@pytest.mark.slow
def test_dynamo_exporter(tiny, tmp_path):
    """torch.export path: dynamic axes named as the TorchScript export names them, module paths in node
    names; where the colorizer module does not export with it, the fallback is recorded."""
    result = export(tiny, tmp_path / "d.onnx", exporter="auto")
    meta = result.metadata
    if meta["exporter"] == "dynamo":
        graph = onnx.load(str(result.path)).graph
        dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["batch", "height", "width", "channels"]
        assert any(n.name.startswith("/net/") for n in graph.node)
        with OrtRunner(result.path) as runner, TorchRunner(tiny) as ref:
            assert compare(ref, runner).within(2, 0.05)
    else:
        assert meta["exporter"] == "torchscript" and meta["exporter_fallback"].startswith("dynamo")


@pytest.mark.parametrize("layout", [False, True])
def test_uint8_input_read_by_shapes_and_casts_gets_no_float_copy(layout):
    """uint8_at_the_edges: Shapes beside the input's cast read the cast's output (no pass over the frame);
    a layout operator on the uint8 input still gets a float copy. Either way TensorRT's rules hold."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from runtimes.onnx import uint8_at_the_edges

    u8, i32 = TensorProto.UINT8, TensorProto.INT32
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),  # before the cast: the rewrite must keep the order topological
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]) if layout else None,
        helper.make_node("Cast", ["t" if layout else "x"], ["c"], to=i32),
        helper.make_node("Reshape", ["c", "s"], ["r"]) if not layout else helper.make_node("Identity", ["c"], ["r"]),
        helper.make_node("Cast", ["r"], ["y"], to=u8),
    ]
    graph = helper.make_graph(
        [n for n in nodes if n is not None],
        "g",
        [helper.make_tensor_value_info("x", u8, [2, 3])],
        [helper.make_tensor_value_info("y", u8, [3, 2] if layout else [2, 3])]
        + ([helper.make_tensor_value_info("s", TensorProto.INT64, [2])] if layout else []),
        value_info=[helper.make_tensor_value_info("c", i32, [3, 2] if layout else [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    uint8_at_the_edges(model)
    onnx.checker.check_model(model, full_check=True)
    assert tensorrt_problems(model) == []
    readers = [(n.op_type, n.attribute[0].i) for n in model.graph.node if "x" in n.input]
    assert readers == ([("Cast", TensorProto.FLOAT)] if layout else [("Cast", i32)])
    x = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(y, x.T if layout else x)


def test_a_chroma_gain_travels_into_the_graph(tiny_net, tmp_path):
    """The gain is part of the model's decode, so an export carries it: the graph matches the torch
    module with the gain, and its colours are stronger than the same weights' without it."""
    import copy

    gained_net = copy.deepcopy(tiny_net)
    gained_net.set_chroma_gain(1.3)
    gained = ColorizerModule(gained_net, size=64).eval()
    art = export(gained, tmp_path / "g.onnx", "fp32", model_name="tiny-gain")
    assert art.parity.within(2, 0.05)
    img = np.random.default_rng(5).integers(0, 256, (1, 64, 80, 1), dtype=np.uint8)
    with OrtRunner(art.path) as runner, TorchRunner(ColorizerModule(tiny_net, size=64).eval()) as plain:
        out = runner.infer({INPUT_NAME: img})[OUTPUT_NAME].astype(np.float32)
        ref = plain.infer({INPUT_NAME: img})[OUTPUT_NAME].astype(np.float32)

    def spread(rgb):  # the distance of each pixel from its own gray: chroma in RGB terms
        return np.abs(rgb - rgb.mean(-1, keepdims=True)).mean()

    assert spread(out) > 1.1 * spread(ref)


def test_a_stop_that_an_exporter_swallows_still_stops_the_export(tiny, tmp_path, monkeypatch):
    """torch's exporter has been seen to wrap a Ctrl-C that landed inside it in its own error, so the
    next exporter ran and the artifact was written: the stop is recorded, and the fallback raises it."""
    import signal

    import runtimes.onnx as onnx_module
    from edge_colorizer.stopping import Stopped, clear_stop, record_stop

    def swallowing(ready, name):
        record_stop(signal.SIGINT)  # what the CLI's handler does before raising
        raise RuntimeError("Failed to export the model with torch.export")  # what the exporter raised instead

    monkeypatch.setattr(onnx_module, "_to_onnx", swallowing)
    try:
        with pytest.raises(Stopped) as stop:
            export(tiny, tmp_path / "sub" / "m.onnx", exporter="auto")
    finally:
        clear_stop()
    assert stop.value.code == 130 and list(tmp_path.iterdir()) == []  # no artifact, no folder made for it
