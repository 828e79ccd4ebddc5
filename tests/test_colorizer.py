import numpy as np
import pytest
import torch

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from edge_colorizer.lab import rgb_to_lab
from edge_colorizer.models import create_model


class ConstantAB(torch.nn.Module):
    """Predicts one fixed normalised ab everywhere, at half the input resolution."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.register_buffer("ab", torch.tensor([a, b]).view(1, 2, 1, 1))
        self.seen = None

    def forward(self, l_norm):
        self.seen = l_norm.shape
        n, _, h, w = l_norm.shape
        return self.ab.expand(n, 2, h // 2, w // 2)


def test_gray_baseline_returns_the_luminance_of_the_input(real_photos):
    img = torch.from_numpy(real_photos["coffee"])[None]
    out = ColorizerModule(GrayBaseline(), size=64)(img)
    assert out.shape == img.shape and out.dtype == torch.uint8
    out_np = out[0].numpy().astype(int)
    assert np.abs(out_np[..., 0] - out_np[..., 1]).max() <= 1  # gray
    L_in = rgb_to_lab(img[0].permute(2, 0, 1).float() / 255)[0]
    L_out = rgb_to_lab(out[0].permute(2, 0, 1).float() / 255)[0]
    assert (L_in - L_out).abs().max() < 0.6  # luminance kept up to uint8 rounding


def test_network_sees_fixed_size_and_output_keeps_resolution():
    net = ConstantAB(0.3, -0.2)
    colorizer = ColorizerModule(net, size=48)
    x = torch.full((2, 37, 91, 1), 128, dtype=torch.uint8)
    out = colorizer(x)
    assert net.seen == (2, 1, 48, 48)
    assert out.shape == (2, 37, 91, 3)
    lab = rgb_to_lab(out[0].permute(2, 0, 1).float() / 255)
    assert abs(lab[1].mean().item() - 0.3 * 110) < 1.5 and abs(lab[2].mean().item() + 0.2 * 110) < 1.5


def test_gray_and_rgb_inputs_of_the_same_luminance_agree():
    net = create_model("unet_s", width=8).eval()
    colorizer = ColorizerModule(net, size=32)
    gray = torch.randint(0, 256, (1, 40, 30, 1), dtype=torch.uint8)
    rgb = gray.expand(-1, -1, -1, 3).contiguous()
    assert torch.equal(colorizer(gray), colorizer(rgb))


def test_input_validation():
    colorizer = ColorizerModule(GrayBaseline(), size=32)
    with pytest.raises(ValueError, match="shape"):
        colorizer(torch.zeros(1, 3, 8, 8, dtype=torch.uint8).permute(0, 2, 3, 1)[..., :2])
    with pytest.raises(TypeError, match="uint8"):
        colorizer(torch.zeros(1, 8, 8, 3))
    with pytest.raises(ValueError, match="multiple of 8"):
        ColorizerModule(GrayBaseline(), size=30)


# --- the full-resolution path against the float-kernel definition ---------------------------------

import threading  # noqa: E402

import torch.nn.functional as F  # noqa: E402

from edge_colorizer.colorizer import (  # noqa: E402
    RESIZE_FORMS,
    UPSAMPLE_FORMS,
    colorize_reference,
    resize_antialiased,
    resize_l,
    resize_segments,
    upsample_bilinear,
)


def _inputs(real_photos):
    rng = np.random.default_rng(1)
    return [
        rng.integers(0, 256, (2, 37, 91, 3), dtype=np.uint8),  # odd sizes, a batch
        rng.integers(0, 256, (1, 301, 171, 1), dtype=np.uint8),  # gray
        rng.integers(0, 256, (1, 5, 7, 3), dtype=np.uint8),  # smaller than the network: resize enlarges
        rng.integers(0, 256, (1, 1, 1, 1), dtype=np.uint8),
        real_photos["astronaut"][None],
        real_photos["chelsea"][None, ::2, ::2].copy(),
        np.ascontiguousarray(real_photos["coffee"][None, ..., :1]),  # a real photo's red channel as gray
    ]


def _parity(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    d = (a.int() - b.int()).abs()
    return int(d.max()), float(d.float().mean())


@pytest.mark.parametrize("net", ["constant", "unet_s", pytest.param("student", marks=pytest.mark.slow)])
def test_fast_path_matches_the_float_kernel_path_within_one_level(real_photos, net):
    if net == "student":
        from edge_colorizer.inference import load_colorizer

        colorizer = load_colorizer("student")
    else:
        module = ConstantAB(0.3, -0.5) if net == "constant" else create_model("unet_s", width=8).eval()
        colorizer = ColorizerModule(module, size=48).eval()
    with torch.inference_mode():
        for img in _inputs(real_photos):
            x = torch.from_numpy(img)
            out = colorizer(x)
            assert out.shape == (*img.shape[:3], 3) and out.dtype == torch.uint8 and out.is_contiguous()
            max_abs, mean_abs = _parity(out, colorize_reference(colorizer.net, colorizer.size, x))
            assert max_abs <= 1 and mean_abs < 0.02, (img.shape, max_abs, mean_abs)


def test_eager_bands_and_the_traced_graph_form_agree(real_photos):
    colorizer = ColorizerModule(create_model("unet_s", width=8).eval(), size=32).eval()
    with torch.inference_mode():
        for img in _inputs(real_photos):
            x = torch.from_numpy(img)
            # the whole-tensor form is what exporters trace; on the CPU, eager torch runs bands
            assert _parity(colorizer(x), colorizer._forward_graph(x))[0] <= 1


@pytest.mark.parametrize("shape", [(1080, 1920), (37, 91), (256, 256), (5, 7), (2000, 13), (96, 48), (1, 1), (49, 47)])
def test_resize_forms_agree(shape):
    x = torch.rand(2, 1, *shape, dtype=torch.float64).float()
    ref = resize_antialiased(x.double(), 48)
    for form in ("interpolate", "segments", "matrix"):
        assert (resize_l(x, 48, form).double() - ref).abs().max() < 1e-5, form
    assert torch.allclose(
        resize_segments(x, 48), F.interpolate(x, size=(48, 48), mode="bilinear", antialias=True), atol=1e-5
    )


@pytest.mark.parametrize("size", [(1080, 1920), (37, 91), (5, 7), (1, 1), (256, 256), (20, 600)])
def test_upsample_forms_agree_with_torch(size):
    x = torch.rand(2, 2, 32, 24, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    for form in UPSAMPLE_FORMS:
        out = upsample_bilinear(x, size, form)
        assert out.shape == ref.shape and (out - ref).abs().max() < 1e-5, form
    with pytest.raises(ValueError, match="upsample form"):
        upsample_bilinear(x, size, "nearest")


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_rows_upsampling_in_half_precision_reads_the_right_rows(dtype, tolerance):
    # row positions are float32 whatever the input's type (bf16 has 8 bits: row 1000 of 1080 would be 1000 or 1004)
    x = torch.rand(1, 2, 256, 16, generator=torch.Generator().manual_seed(1))
    ref = F.interpolate(x, size=(1080, 40), mode="bilinear", align_corners=False)
    out = upsample_bilinear(x.to(dtype), (1080, 40), "rows")
    assert out.dtype == dtype and (out.float() - ref).abs().max() < tolerance


def test_resize_form_is_chosen_at_construction():
    colorizer = ColorizerModule(GrayBaseline(), size=32)
    assert colorizer.resize == "auto" and set(RESIZE_FORMS) >= {"auto", "interpolate", "segments", "matrix"}
    assert colorizer.with_forms(resize="matrix").resize == "matrix"
    assert colorizer.with_forms(upsample="rows").upsample == "rows" and set(UPSAMPLE_FORMS) == {"resize", "rows"}
    assert colorizer.with_forms(upsample="rows").resize == "auto"
    with pytest.raises(ValueError, match="upsample form"):
        ColorizerModule(GrayBaseline(), size=32, upsample="nearest")
    with pytest.raises(ValueError, match="resize form"):
        ColorizerModule(GrayBaseline(), size=32, resize="bicubic")


def test_grad_mode_and_concurrent_threads_give_the_same_result():
    colorizer = ColorizerModule(create_model("unet_s", width=8), size=32)  # parameters require grad
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (1, 150, 97, 3), dtype=np.uint8))
    expected = colorizer(x)  # grad mode on: still runs, uint8 out
    results = [None] * 4

    def work(i):
        with torch.inference_mode():
            results[i] = colorizer(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(r, expected) for r in results)


@pytest.mark.parametrize("resize, upsample", [("auto", "resize"), ("matrix", "resize"), ("auto", "rows")])
def test_onnx_opset17_graph_is_dynamic_and_matches_torch(tmp_path, resize, upsample, real_photos):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import warnings

    net = create_model("unet_s", width=8).eval()
    colorizer = ColorizerModule(net, size=32, resize=resize, upsample=upsample).eval()
    path = tmp_path / "c.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            colorizer,
            (torch.zeros(1, 64, 64, 3, dtype=torch.uint8),),
            str(path),
            opset_version=17,
            input_names=["images"],
            output_names=["rgb"],
            dynamic_axes={"images": {0: "n", 1: "h", 2: "w", 3: "c"}, "rgb": {0: "n", 1: "h", 2: "w"}},
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        for img in _inputs(real_photos):
            out = session.run(None, {"images": img})[0]
            assert _parity(torch.from_numpy(out), colorizer(torch.from_numpy(img)))[0] <= 2, img.shape


# --- the GPU path: its numerics are checked here on the CPU, its speed and CUDA graphs on a GPU only --

from edge_colorizer.colorizer import CudaFramePipeline  # noqa: E402


def test_frame_pipeline_fp16_network_stays_within_the_fp16_tolerance(real_photos):
    from edge_colorizer.inference import load_colorizer

    colorizer = load_colorizer("student", size=64)  # fp16 convolutions are slow on a CPU
    x = torch.from_numpy(real_photos["astronaut"][None, ::4, ::4].copy())
    pipeline = CudaFramePipeline(colorizer, *x.shape, compiled=False, device="cpu")
    with torch.inference_mode():
        max_abs, mean_abs = _parity(pipeline(x), colorizer(x))
    assert max_abs <= 8 and mean_abs <= 0.5  # the formats table's fp16 tolerance
    with pytest.raises(ValueError, match="built for"):
        pipeline(x[:, :-2])


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("shape", [(256, 256), (1080, 1920)])
def test_cuda_graph_pipeline_matches_the_cpu(batch, shape):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from edge_colorizer.inference import load_colorizer

    colorizer = load_colorizer("student")
    x = torch.randint(0, 256, (batch, *shape, 3), dtype=torch.uint8)
    pipeline = CudaFramePipeline(colorizer, batch, *shape)
    out = pipeline(x.cuda())
    again = pipeline(x.flip(0).cuda())  # a replay does not disturb the previous result
    with torch.inference_mode():
        ref = colorizer(x)
    assert out.is_cuda and out.dtype == torch.uint8 and _parity(again.cpu().flip(0), out.cpu())[0] <= 1
    assert _parity(out.cpu(), ref)[0] <= 8


def test_inference_mode_then_no_grad_on_the_same_module():
    # the in-place kernel's scratch buffers made under inference_mode must not be written outside it
    colorizer = ColorizerModule(create_model("unet_s", width=8), size=32).eval()
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (1, 40, 52, 3), dtype=np.uint8))
    with torch.inference_mode():
        first = colorizer(x)
    with torch.no_grad():
        again = colorizer(x)
    with torch.inference_mode():
        third = colorizer(x)
    assert torch.equal(first, again) and torch.equal(first, third)


def test_segments_resize_has_no_nan_when_enlarging():
    # the shrinking branch is computed and discarded when enlarging: it must stay finite, or INT8
    # calibrators (which read every intermediate) and gradients see NaN
    from edge_colorizer.colorizer import resize_segments

    x = torch.rand(1, 1, 50, 60, requires_grad=True)
    out = resize_segments(x, 64)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_wrapping_a_network_keeps_the_lab_tables_on_its_device():
    # a network already on a GPU gives a colorizer that runs there (the loop's validation does this);
    # the meta device stands in for the GPU on machines without one
    net = create_model("unet_s", width=8).to("meta")
    colorizer = ColorizerModule(net, size=32)
    assert colorizer.device.type == "meta"
    assert {b.device.type for b in colorizer.buffers()} == {"meta"}
