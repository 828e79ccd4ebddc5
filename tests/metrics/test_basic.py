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


def test_mse_and_ae_known_values():
    from edge_colorizer.metrics import ae, mse

    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12
    assert mse(a, b) == pytest.approx(144 / 12)
    assert ae(a, b) == pytest.approx(12 / 12)


def test_ssim_matches_skimage(real_photos):
    from skimage.metrics import structural_similarity

    from edge_colorizer.metrics import ssim

    x = real_photos["coffee"][::2, ::2]
    rng = np.random.default_rng(0)
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(
        x, y, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(x, y) == pytest.approx(ref, abs=1e-6)
    assert ssim(x, x) == pytest.approx(1.0)


def test_ciede2000_matches_skimage_and_sharma_pairs(real_photos):
    from skimage.color import deltaE_ciede2000, rgb2lab

    from edge_colorizer.metrics import ciede2000, delta_e2000

    # pairs from Sharma, Wu & Dalal (2005), table 1
    lab1 = np.array([[50.0, 2.6772, -79.7751], [50.0, -1.3802, -84.2814], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]])
    lab2 = np.array([[50.0, 0.0, -82.7485], [50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]])
    assert np.allclose(ciede2000(lab1, lab2), [2.0425, 1.0000, 2.3669, 27.1492], atol=1e-4)
    a = real_photos["chelsea"][::4, ::4]
    b = real_photos["coffee"][: a.shape[0], : a.shape[1]]
    ref = deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()
    assert delta_e2000(a, b) == pytest.approx(ref, abs=1e-3)
