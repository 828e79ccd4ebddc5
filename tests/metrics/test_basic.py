import numpy as np
import pytest

from edge_colorizer.metrics import colorfulness, psnr


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        psnr(a, b[:2])


def test_colorfulness_known_values():
    gray = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8, 1), 3, axis=2)
    assert colorfulness(gray) == pytest.approx(0.0)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, no spread: M = 0.3 * hypot(255, 127.5)
    assert colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_colorfulness_orders_saturation(real_photos):
    img = real_photos["coffee"].astype(np.float64)
    gray = img.mean(-1, keepdims=True)
    washed = (gray + 0.3 * (img - gray)).round().astype(np.uint8)
    assert colorfulness(washed) < colorfulness(real_photos["coffee"])
