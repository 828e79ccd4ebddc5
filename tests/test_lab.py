import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from edge_colorizer.lab import (
    Y_BINS,
    denormalize_ab,
    denormalize_l,
    lab_f_inverse,
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


# --- the uint8 fast path: tables built from the kernel above, checked against it -------------------

from edge_colorizer.lab import (  # noqa: E402
    BandKernel,
    lab_offsets_to_uint8,
    luminance_tables,
    srgb_code_table,
    uint8_luminance,
)


def _uint8_images():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (2, 19, 23, 3), dtype=np.uint8), rng.integers(0, 256, (1, 7, 300, 1), dtype=np.uint8)]


def test_luminance_of_uint8_matches_the_float_kernel(real_photos):
    y_table, f_table = luminance_tables()
    images = _uint8_images() + [img[None, ::3, ::3] for img in real_photos.values()]
    for img in images:
        y, fy = uint8_luminance(torch.from_numpy(img), y_table, f_table)
        rgb = torch.from_numpy(img).permute(0, 3, 1, 2).float().expand(-1, 3, -1, -1) / 255.0
        lab = rgb_to_lab(rgb)
        assert (116.0 * fy - 16.0 - lab[:, 0]).abs().max() < 0.015  # L, from binned f(Y)
        assert (y / Y_BINS - lab_f_inverse((lab[:, 0] + 16.0) / 116.0)).abs().max() < 1e-4  # Y


def test_every_gray_level_gives_the_same_bits_as_its_rgb_copy():
    y_table, f_table = luminance_tables()
    gray = torch.arange(256, dtype=torch.uint8).view(1, 1, 256, 1)
    rgb = gray.expand(-1, -1, -1, 3).contiguous()
    for a, b in zip(uint8_luminance(gray, y_table, f_table), uint8_luminance(rgb, y_table, f_table), strict=True):
        assert torch.equal(a, b)


def test_srgb_code_table_rounds_the_transfer_function():
    table = srgb_code_table()
    assert table.dtype == torch.int32 and table[0] == 0 and table[-1] == 255
    # every 8-bit code is reachable and the table never decreases
    assert set(table.tolist()) == set(range(256)) and bool((table[1:] >= table[:-1]).all())


def _random_lab(seed: int, n: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(n, generator=g) * 100
    ab = (torch.rand(2, n, generator=g) - 0.5) * 220  # well beyond the sRGB gamut
    return torch.cat((L[None], ab)).view(1, 3, 64, n // 64)


def test_lab_offsets_to_uint8_is_lab_to_rgb_rounded_within_one_level():
    lab = _random_lab(3)
    fy = (lab[:, 0] + 16.0) / 116.0
    y = lab_f_inverse(fy) * Y_BINS
    offsets = torch.stack((lab[:, 1] / 500.0, -lab[:, 2] / 200.0), dim=1)
    out = lab_offsets_to_uint8(fy, y, offsets, srgb_code_table())
    ref = (lab_to_rgb(lab) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
    diff = (out.int() - ref.int()).abs()
    assert out.dtype == torch.uint8 and out.shape == (1, 64, 64, 3)
    assert diff.max() <= 1 and diff.float().mean() < 0.01


def test_band_kernel_matches_the_functional_form():
    y_table, f_table = luminance_tables()
    codes = srgb_code_table()
    kernel = BandKernel(y_table, f_table, codes)
    for img in _uint8_images():
        x = torch.from_numpy(img)
        y_ref, fy_ref = uint8_luminance(x, y_table, f_table)
        y, fy = torch.empty_like(y_ref), torch.empty_like(fy_ref)
        for n in range(x.shape[0]):
            kernel.luminance(x[n], y[n], fy[n])
        assert torch.equal(y, y_ref) and torch.equal(fy, fy_ref)
        offsets = (torch.rand(x.shape[0], 2, *x.shape[1:3]) - 0.5) * 0.6
        ref = lab_offsets_to_uint8(fy, y, offsets, codes)
        out = torch.empty_like(ref)
        for n in range(x.shape[0]):
            kernel.to_uint8(fy[n], y[n], offsets[n].transpose(0, 1).contiguous(), out[n])
        diff = (out.int() - ref.int()).abs()  # fused multiply-adds in the bands: rare one-level flips
        assert diff.max() <= 1 and float((diff > 0).float().mean()) < 1e-3
