import numpy as np
import pytest
import torch

from edge_colorizer.models.encoders import EfficientNetLite0, SameConv2d, freeze_same_padding
from runtimes.runners import (
    DYNAMIC_INPUT,
    INPUT_NAME,
    OUTPUT_NAME,
    TensorMeta,
    TorchRunner,
    as_batches,
    compare,
    conform,
    export_ready,
    parity_images,
)


def test_parity_images_cover_gray_rgb_batches_and_odd_sizes():
    images = parity_images()
    assert {x.shape[-1] for x in images} == {1, 3} and any(x.shape[0] > 1 for x in images)
    assert all(x.dtype == np.uint8 for x in images)
    assert all(np.array_equal(a, b) for a, b in zip(images, parity_images(), strict=True))


def test_conform_fits_fixed_shape_runtimes():
    x = np.zeros((2, 30, 40, 1), np.uint8)
    assert [b.shape for b in conform(x, DYNAMIC_INPUT)] == [(2, 30, 40, 1)]
    fixed = TensorMeta(INPUT_NAME, "uint8", (1, 16, 24, 3))
    assert [b.shape for b in conform(x, fixed)] == [(1, 16, 24, 3)] * 2
    with pytest.raises(ValueError, match="fixed batch"):
        conform(x, TensorMeta(INPUT_NAME, "uint8", (4, None, None, None)))


def test_as_batches_accepts_images_and_refuses_garbage():
    batches = as_batches([np.zeros((5, 6), np.uint8), np.zeros((5, 6, 3), np.uint8), np.zeros((2, 5, 6, 1), np.uint8)])
    assert [b.shape for b in batches] == [(1, 5, 6, 1), (1, 5, 6, 3), (2, 5, 6, 1)]
    with pytest.raises(TypeError, match="uint8"):
        as_batches([np.zeros((5, 6, 3), np.float32)])
    with pytest.raises(ValueError, match="expected"):
        as_batches([np.zeros((5, 6, 4), np.uint8)])


def test_compare_measures_the_difference(tiny):
    class Off(TorchRunner):
        def infer(self, feeds):
            out = super().infer(feeds)[OUTPUT_NAME].astype(np.int16)
            return {OUTPUT_NAME: np.clip(out + 3, 0, 255).astype(np.uint8)}

    with TorchRunner(tiny) as a, Off(tiny) as b:
        assert compare(a, a).max_abs == 0
        parity = compare(a, b)
    assert parity.max_abs == 3 and 0 < parity.mean_abs <= 3 and not parity.within(2, 0.05)


def test_frozen_same_padding_is_a_constant_and_changes_nothing():
    torch.manual_seed(0)
    net = EfficientNetLite0().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = net.features(x)
        assert freeze_same_padding(torch.nn.Sequential(), x) == 0
        n = sum(isinstance(m, SameConv2d) for m in net.modules())

        class Features(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net.features(x)

        assert freeze_same_padding(Features(), x) == n
        after = net.features(x)
        other = torch.randn(1, 3, 50, 70)  # another size still gets its own padding
        frozen_other = net.features(other)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    for m in net.modules():
        if isinstance(m, SameConv2d):
            m.frozen = None
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(frozen_other, net.features(other), strict=True))


def test_export_ready_is_a_frozen_copy(tiny):
    ready = export_ready(tiny)
    assert ready is not tiny and ready.net is not tiny.net and not ready.training
    x = torch.from_numpy(parity_images()[0])
    with torch.inference_mode():
        assert torch.equal(ready(x), tiny(x))
