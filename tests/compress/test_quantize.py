import json

import pytest
import torch

from compress.quantize import QuantizationRefused, QuantizeConfig, insert_fake_quant, quantize, strip_fake_quant
from edge_colorizer.checkpoint import load_model, save_model
from edge_colorizer.models import create_model
from tests.training.test_train import QUIET, stop_requested_at, tiny_cfg, tiny_pool  # noqa: F401  (fixture)

pytest.importorskip("onnxruntime")


@pytest.fixture
def trained_tiny(tmp_path, tiny_pool):  # noqa: F811
    """A tiny student trained a few steps, so its colours are not noise."""
    from training.train import train

    cfg = tiny_cfg(tmp_path, tiny_pool, steps=12, lr=3e-3, model_args={"head": "bins", "width": 8})
    return train(cfg, **QUIET).path


def test_fake_quantization_attaches_and_strips_cleanly():
    net = create_model("unet_s", head="bins", width=8).eval()
    keys, x = set(net.state_dict()), torch.randn(1, 1, 32, 32)
    reference = net(x)
    insert_fake_quant(net)
    assert any("parametrizations" in k for k in net.state_dict())
    net.train()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.eval()  # keep the running statistics: only the quantizers observe
    net(x)  # observes activation ranges
    rounded = net.eval()(x)
    assert 0 < (rounded - reference).abs().max() < 0.2  # INT8 rounding, not a different network
    strip_fake_quant(net)
    assert set(net.state_dict()) == keys and torch.allclose(net(x), reference)


def test_qat_then_int8_onnx_within_budget(tmp_path, tiny_pool, trained_tiny):  # noqa: F811
    qat = tiny_cfg(tmp_path, tiny_pool, steps=2, lr=1e-4)
    cfg = QuantizeConfig(
        model=str(trained_tiny),
        out=str(tmp_path / "q"),
        data=str(tiny_pool),
        val=str(tiny_pool),
        calibration_images=4,
        budget=0.05,
        qat=qat,
    )
    with stop_requested_at(2):  # a SIGTERM in QAT's last step: the export waits for --resume
        assert quantize(cfg, **QUIET).path is None and not (tmp_path / "q" / "model_int8.onnx").exists()
        assert (tmp_path / "q" / "qat" / "model.pt").exists()  # the fine-tuning itself finished
    result = quantize(cfg, resume=True, **QUIET)
    assert result.path.name == "model_int8.onnx" and result.path.exists()
    card = json.loads((tmp_path / "q" / "model_int8.onnx.card.json").read_text())
    assert "quantization-aware (2 steps)" in card["method"] and set(card["validation"]) >= {"fp32", "int8"}
    assert load_model(tmp_path / "q" / "qat" / "model.pt").model_name == "unet_s"  # plain weights again
    import onnx

    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_an_int8_result_over_the_budget_is_refused_and_nothing_is_written(tmp_path, tiny_pool):  # noqa: F811
    # an outlier channel, the classic INT8 failure: the bundled student's function unchanged in fp32, but
    # one channel of its last decoder block 40x larger (the next convolution reads it 40x smaller), so
    # the per-tensor INT8 range of that activation is 40x coarser for every other channel
    from edge_colorizer.inference import resolve_model_path

    net = load_model(resolve_model_path("student"))
    block, seen = net.up[0].block.body, []
    block[2].register_forward_hook(lambda m, i, o: seen.append(o.mean(dim=(0, 2, 3))))
    with torch.no_grad():
        net(torch.rand(2, 1, 64, 64) - 0.5)
        c = int(seen[0].argmax())  # the channel most alive after its ReLU
        block[1].weight[c] *= 40.0
        block[1].bias[c] *= 40.0
        block[3].weight[:, c] /= 40.0
    save_model(net, tmp_path / "outlier.pt")
    cfg = QuantizeConfig(
        model=str(tmp_path / "outlier.pt"),
        out=str(tmp_path / "q"),
        data=str(tiny_pool),
        val=str(tiny_pool),
        calibration_images=3,
        budget=0.001,  # measured: this INT8 loses 0.0037 LPIPS on the tiny pool
    )
    with pytest.raises(QuantizationRefused, match=r"worse than fp32 by 0\.00\d+ LPIPS .*budget 0.001"):
        quantize(cfg, **QUIET)
    assert not list((tmp_path / "q").glob("model_int8*"))


def test_formats_without_int8_here_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no INT8 export that runs here"):
        QuantizeConfig(model="student", out=str(tmp_path), data="d", val="v", format="tensorrt")
