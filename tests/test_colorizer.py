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
