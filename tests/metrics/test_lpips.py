import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.metrics.lpips import LPIPS, to_lpips_input
from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "lpips"


@pytest.fixture(scope="module")
def alex():
    return LPIPS("alex")


def load(name):
    return to_lpips_input(np.asarray(Image.open(FIXTURES / f"{name}.png").convert("RGB")))


@pytest.mark.skipif(not FIXTURES.exists(), reason=f"reference LPIPS triplet not found at {FIXTURES}")
def test_reference_triplet_alexnet(alex):
    ref, p0, p1 = load("ex_ref"), load("ex_p0"), load("ex_p1")
    with torch.no_grad():
        assert alex(ref, p0).item() == pytest.approx(0.722, abs=0.002)
        assert alex(ref, p1).item() == pytest.approx(0.138, abs=0.002)


def test_identity_is_zero_and_distance_grows_with_noise(alex, real_photos):
    x = to_lpips_input(real_photos["coffee"][::2, ::2])
    rng = np.random.default_rng(0)
    noisy = [
        to_lpips_input(
            np.clip(real_photos["coffee"][::2, ::2] + rng.normal(0, s, (200, 300, 3)), 0, 255).astype(np.uint8)
        )
        for s in (5, 40)
    ]
    with torch.no_grad():
        assert alex(x, x).item() == pytest.approx(0.0, abs=1e-6)
        d_small, d_big = alex(x, noisy[0]).item(), alex(x, noisy[1]).item()
    assert 0 < d_small < d_big


@pytest.mark.slow
def test_vgg_variant_loads_and_is_symmetric(real_photos):
    vgg = LPIPS("vgg")
    a = to_lpips_input(real_photos["chelsea"][:64, :64])
    b = to_lpips_input(real_photos["coffee"][:64, :64])
    with torch.no_grad():
        assert vgg(a, b).item() == pytest.approx(vgg(b, a).item(), rel=1e-5)
        assert vgg(a, b).item() > 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="net"):
        LPIPS("resnet")
