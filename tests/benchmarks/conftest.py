import pytest


@pytest.fixture(scope="session", autouse=True)
def _fast_onnx_exporter():
    """The TorchScript ONNX exporter: seconds, where torch.export takes most of a minute on 2 cores."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("runtimes.onnx.DEFAULT_EXPORTER", "torchscript", raising=False)
        yield
