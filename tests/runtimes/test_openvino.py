import json

import numpy as np
import pytest
import torch

from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TorchRunner, compare

ov = pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

from runtimes.openvino import (  # noqa: E402
    OpenVINORunner,
    export,
    ignored_scope_names,
    precision_name,
    read_metadata,
)

TOLERANCES = FORMATS["openvino"].tolerances


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ov")
    return {p: export(tiny, folder / f"m_{p}_openvino", p, model_name="tiny") for p in ("fp32", "fp16")}


def test_ir_folder_with_metadata_and_parity(exported):
    for precision, result in exported.items():
        assert sorted(p.name for p in result.path.iterdir()) == ["metadata.json", "model.bin", "model.xml"]
        meta = read_metadata(result.path)
        assert meta["precision"] == precision and meta["format"] == "openvino" and meta["model"] == "tiny"
        assert json.loads(meta["lab"])["ab_norm"] == 110.0
        assert result.parity.within(*TOLERANCES[precision])
    # fp16 stores the weights in half: about half the size
    sizes = {p: (r.path / "model.bin").stat().st_size for p, r in exported.items()}
    assert sizes["fp16"] < 0.6 * sizes["fp32"]


def test_ab_is_enlarged_by_a_row_resize_then_blended_rows(exported, tiny):
    # OpenVINO's form of the upsampling (UPSAMPLE_FORMS "rows"): no Interpolate makes the frame's own
    # (dynamic) height; ab is widened at the network's output height and its rows gathered and blended
    model = ov.Core().read_model(str(exported["fp32"].path / "model.xml"))
    heights = [op.get_output_partial_shape(0)[2] for op in model.get_ops() if op.get_type_name() == "Interpolate"]
    with torch.no_grad():
        small = tiny.net(torch.zeros(1, 1, tiny.size, tiny.size)).shape[-2]
    assert heights and all(h.is_static and h.get_length() <= small for h in heights), heights


def test_runner_pins_f32_and_takes_any_shape(exported, tiny):
    with OpenVINORunner(exported["fp32"].path, threads=1) as runner, TorchRunner(tiny) as ref:
        assert runner.inference_precision == "f32" and runner.threads == 1
        assert runner.inputs[0].dtype == "uint8" and runner.inputs[0].dynamic_axes == (0, 1, 2, 3)
        gray = np.random.default_rng(1).integers(0, 256, (2, 41, 67, 1), dtype=np.uint8)
        out = runner.infer({INPUT_NAME: gray})[OUTPUT_NAME]
        assert out.shape == (2, 41, 67, 3) and out.dtype == np.uint8
        assert compare(ref, runner, [gray]).within(*TOLERANCES["fp32"])


def test_a_shape_met_again_runs_a_static_model_within_one_level(exported, tiny, monkeypatch):
    import runtimes.openvino as ov_runtime

    monkeypatch.setattr(ov_runtime, "STATIC_MODELS", 1)
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (1, 45, 70, 3), dtype=np.uint8) for _ in range(3)]
    other = rng.integers(0, 256, (1, 30, 52, 1), dtype=np.uint8)
    with OpenVINORunner(exported["fp32"].path, threads=1) as runner, TorchRunner(tiny) as ref:
        dynamic = [runner.infer({INPUT_NAME: f})[OUTPUT_NAME] for f in frames[:1]]
        assert not runner.static_requests  # met once: the dynamic model ran it
        static = [runner.infer({INPUT_NAME: f})[OUTPUT_NAME] for f in frames]
        assert list(runner.static_requests) == [frames[0].shape]
        request = runner.request_for(frames[0].shape)
        assert request is not runner.request
        assert request.get_compiled_model().inputs[0].get_partial_shape().is_static
        # the same frame through both models: one level apart at most (fused multiply-adds)
        assert np.abs(static[0].astype(int) - dynamic[0]).max() <= 1
        assert compare(ref, runner, frames).within(*TOLERANCES["fp32"])
        runner.infer({INPUT_NAME: other})
        runner.infer({INPUT_NAME: other})
        assert list(runner.static_requests) == [other.shape]  # the oldest made room ...
        for f in frames[:2]:
            runner.infer({INPUT_NAME: f})
        assert list(runner.static_requests) == [frames[0].shape]  # ... and comes back when met twice again
    with OpenVINORunner(exported["fp32"].path, threads=1, static_after=0) as runner:
        for f in frames:
            runner.infer({INPUT_NAME: f})
        assert not runner.static_requests


def test_an_ir_with_a_static_shape_is_not_compiled_again(exported, tmp_path):
    model = ov.Core().read_model(str(exported["fp32"].path / "model.xml"))
    model.reshape({INPUT_NAME: [1, 45, 70, 3]})
    ov.save_model(model, str(tmp_path / "model.xml"))
    frame = np.random.default_rng(6).integers(0, 256, (1, 45, 70, 3), dtype=np.uint8)
    with OpenVINORunner(tmp_path, threads=1) as runner:
        assert not runner.dynamic
        for _ in range(3):
            assert runner.infer({INPUT_NAME: frame})[OUTPUT_NAME].shape == (1, 45, 70, 3)
        assert not runner.static_requests


def test_default_cpu_precision_would_be_bf16_where_the_cpu_has_it(exported, tiny):
    """The pin matters where the CPU plugin defaults to bf16 (AVX512-BF16/AMX): without it the Lab math
    drifts; here the pinned runner must stay within the fp32 tolerance either way."""
    core = ov.Core()
    default = core.compile_model(str(exported["fp32"].path / "model.xml"), "CPU")
    default_precision = precision_name(default.get_property("INFERENCE_PRECISION_HINT"))
    has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert (default_precision == "bf16") == has_bf16 or default_precision == "f32"
    with OpenVINORunner(exported["fp32"].path) as runner, TorchRunner(tiny) as ref:
        assert runner.inference_precision == "f32"
        assert compare(ref, runner).within(*TOLERANCES["fp32"])


def test_ignored_scope_keeps_everything_but_the_network_layers(exported):
    model = ov.Core().read_model(str(exported["fp32"].path / "model.xml"))
    ignored = set(ignored_scope_names(model))
    convs = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Convolution"]
    assert any(name.startswith("/net/") and name not in ignored for name in convs)
    lab_ops = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() in ("Power", "MatMul")]
    assert lab_ops and all(name in ignored for name in lab_ops)


@pytest.mark.slow
def test_int8_with_calibration(tiny, tmp_path, calibration):
    pytest.importorskip("nncf")
    with pytest.raises(ValueError, match="calibration"):
        export(tiny, tmp_path / "x_openvino", "int8")
    result = export(tiny, tmp_path / "m_int8_openvino", "int8", calibration)
    meta = read_metadata(result.path)
    assert meta["calibration_images"] == "4" and result.parity.within(*TOLERANCES["int8"])
    model = ov.Core().read_model(str(result.path / "model.xml"))
    fake_quantized = [op for op in model.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert fake_quantized
    # every quantizer feeds a network layer, none the Lab kernel, resizes, the ab head or its decoding
    for fq in fake_quantized:
        for target in fq.output(0).get_target_inputs():
            name = target.get_node().get_friendly_name()
            assert name.startswith("/net/") and name.count("/") >= 3 and not name.startswith("/net/head/"), name


def test_a_damaged_ir_folder_is_named_in_words(exported, tmp_path):
    import shutil

    from runtimes.artifacts import ExportError

    broken = tmp_path / "broken_openvino"
    shutil.copytree(exported["fp32"].path, broken)
    (broken / "model.bin").unlink()
    with pytest.raises(ExportError, match=r"broken_openvino: model.bin is missing$"):
        with OpenVINORunner(broken):
            pass
    (broken / "metadata.json").write_text("{'not': json")
    with pytest.raises(ExportError, match=r"broken_openvino/metadata.json: not valid JSON \(Expecting property"):
        read_metadata(broken)
    (broken / "metadata.json").write_text('{"decoder": {"chroma_gain": 1.2}}')  # a hand edit
    with pytest.raises(ExportError, match=r"metadata.json: not a JSON object of strings"):
        read_metadata(broken)
