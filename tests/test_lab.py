import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from edge_colorizer.lab import (
    denormalize_ab,
    denormalize_l,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
)


def to_t(x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).to(dtype)


def to_np(t: torch.Tensor) -> np.ndarray:
    return t.float().permute(1, 2, 0).numpy()


def test_random_pixels_match_skimage_fp32():
    rgb = np.random.default_rng(0).random((64, 64, 3))
    err = np.abs(to_np(rgb_to_lab(to_t(rgb))) - rgb2lab(rgb))
    assert err[..., 0].max() < 0.05 and err[..., 1:].max() < 0.05


def test_real_pixels_match_skimage_fp32(real_photos):
    for img in real_photos.values():
        rgb = img[::4, ::4] / 255.0
        err = np.abs(to_np(rgb_to_lab(to_t(rgb))) - rgb2lab(rgb))
        assert err.max() < 0.05


def test_fp16_within_stated_bound():
    # fp16 has ~3 significant digits; a and b amplify differences of cube roots by 500 and 200
    rgb = np.random.default_rng(1).random((32, 32, 3))
    err = np.abs(to_np(rgb_to_lab(to_t(rgb, torch.float16))) - rgb2lab(rgb))
    assert err.max() < 0.75
    lab = rgb2lab(rgb)
    back = to_np(lab_to_rgb(to_t(lab, torch.float16)))
    assert np.abs(back - rgb).max() < 0.03  # ~8 uint8 levels at worst, in fp16


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    rng = np.random.default_rng(2)
    lab = np.stack(
        [rng.uniform(0, 100, (32, 32)), rng.uniform(-110, 110, (32, 32)), rng.uniform(-110, 110, (32, 32))], axis=-1
    )
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = lab2rgb(lab)
    assert np.abs(to_np(lab_to_rgb(to_t(lab))) - ref).max() < 1e-3


def test_known_values():
    white = rgb_to_lab(torch.ones(3, 1, 1)).flatten()
    black = rgb_to_lab(torch.zeros(3, 1, 1)).flatten()
    red = rgb_to_lab(torch.tensor([1.0, 0, 0]).view(3, 1, 1)).flatten()
    # scikit-image's matrix leaves white at ab ~ (-0.002, 0.005); we match it
    assert torch.allclose(white, torch.tensor([100.0, 0, 0]), atol=0.01)
    assert torch.allclose(black, torch.zeros(3), atol=1e-4)
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.02)


def test_gray_has_zero_ab():
    g = torch.linspace(0, 1, 11).view(1, 1, 11).expand(3, 4, 11)
    assert rgb_to_lab(g)[1:].abs().max() < 0.01


def test_round_trip_batched():
    rgb = torch.rand(2, 5, 3, 16, 16)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4


def test_gradients_are_finite_everywhere():
    rgb = torch.cat([torch.zeros(3, 2, 2), torch.rand(3, 2, 2), torch.ones(3, 2, 2)], dim=-1).requires_grad_()
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.tensor([[[0.0, 50, 100]], [[0.0, 60, -60]], [[0.0, -60, 60]]]).requires_grad_()
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_normalisation_round_trip_and_ranges():
    L = torch.tensor([0.0, 50.0, 100.0])
    assert torch.allclose(normalize_l(L), torch.tensor([-0.5, 0.0, 0.5]))
    assert torch.allclose(denormalize_l(normalize_l(L)), L)
    ab = torch.tensor([-110.0, 0.0, 110.0])
    assert torch.allclose(normalize_ab(ab), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)


def test_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="shape"):
        rgb_to_lab(torch.rand(4, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        rgb_to_lab(torch.zeros(3, 8, 8, dtype=torch.uint8))


class _RoundTrip(torch.nn.Module):
    def forward(self, rgb):
        lab = rgb_to_lab(rgb)
        return lab, lab_to_rgb(lab)


def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "lab.onnx"
    x = torch.rand(1, 3, 24, 20)
    torch.onnx.export(
        _RoundTrip(),
        (x,),
        str(path),
        opset_version=17,
        input_names=["rgb"],
        output_names=["lab", "rgb_back"],
        dynamo=False,
        dynamic_axes={"rgb": {0: "n", 2: "h", 3: "w"}},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = torch.rand(2, 3, 17, 9)
    lab, back = sess.run(None, {"rgb": y.numpy()})
    ref_lab, ref_back = _RoundTrip()(y)
    assert np.abs(lab - ref_lab.numpy()).max() < 1e-3
    assert np.abs(back - ref_back.numpy()).max() < 1e-4
