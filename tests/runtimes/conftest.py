"""Shared fixtures of the runtime tests: a tiny colorizer, its checkpoint, calibration images.

The ONNX exports in these tests use the TorchScript exporter, which takes seconds where torch.export
takes most of a minute on a 2-core machine; the dynamo path has its own test, marked slow.
"""

import numpy as np
import pytest
import torch

from edge_colorizer.checkpoint import save_model
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.models import create_model


@pytest.fixture(scope="session", autouse=True)
def _fast_onnx_exporter():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("runtimes.onnx.DEFAULT_EXPORTER", "torchscript", raising=False)
        yield


@pytest.fixture(scope="session")
def tiny_net():
    torch.manual_seed(0)
    net = create_model("unet_s", width=8).eval()
    # a trained-looking head: large logits give saturated colours, so parity differences would show
    with torch.no_grad():
        net.head.weight.mul_(20.0)
    return net


@pytest.fixture(scope="session")
def tiny(tiny_net):
    return ColorizerModule(tiny_net, size=64).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_net, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(tiny_net, path)
    return path


@pytest.fixture(scope="session")
def calibration():
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, 120 * 160).reshape(120, 160).astype(np.uint8)
    return [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(3)] + [np.stack([ramp] * 3, -1)]
