import pytest
import torch

from edge_colorizer.models import create_model, list_models
from edge_colorizer.models.ab_bins import annealed_mean, in_gamut_bin_centers, rebalancing_weights, soft_encode


def test_registry_lists_students_and_discriminator():
    names = list_models()
    assert {"unet_s", "unet_m", "patchgan"} <= set(names)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="unet_s"):
        create_model("nope")


def test_students_differ_in_size_and_remember_their_args():
    s = create_model("unet_s", head="regression")
    m = create_model("unet_m", head="regression")
    n_s = sum(p.numel() for p in s.parameters())
    n_m = sum(p.numel() for p in m.parameters())
    assert 3 * n_s < n_m
    assert s.model_name == "unet_s" and s.model_args == {"head": "regression"}


@pytest.mark.parametrize("head", ["bins", "regression"])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_student_output_shape(head, stride):
    model = create_model("unet_s", head=head, out_stride=stride, width=8).eval()
    ab = model(torch.zeros(2, 1, 64, 48))
    assert ab.shape == (2, 2, 64 // stride, 48 // stride)


def test_bins_head_output_is_bounded_by_gamut():
    model = create_model("unet_s", head="bins", width=8).eval()
    ab = model(torch.randn(1, 1, 32, 32)) * 110
    assert ab.abs().max() <= 110


def test_bad_head_is_rejected():
    with pytest.raises(ValueError, match="head"):
        create_model("unet_s", head="softmax")


def test_patchgan_gives_patch_logits():
    d = create_model("patchgan", width=8)
    out = d(torch.zeros(2, 1, 64, 64), torch.zeros(2, 2, 64, 64))
    assert out.shape[0] == 2 and out.shape[1] == 1 and out.shape[2] > 1


def test_bins_cover_srgb_gamut():
    centers = in_gamut_bin_centers()
    assert 250 < centers.shape[0] < 320  # Zhang et al. report 313 with a slightly different sampling
    assert centers.abs().max() < 110


def test_soft_encode_and_annealed_mean_recover_a_colour():
    centers = in_gamut_bin_centers()
    ab = torch.tensor([30.0, -40.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    target = soft_encode(ab, centers)
    assert torch.allclose(target.sum(1), torch.ones(1, 3, 3))
    logits = torch.log(target + 1e-12)
    decoded = annealed_mean(logits, centers, temperature=1.0)
    assert (decoded - ab).abs().max() < 3.0


def test_rebalancing_weights_favour_rare_bins():
    prior = torch.tensor([0.7, 0.2, 0.1])
    w = rebalancing_weights(prior, lam=0.5)
    assert w[2] > w[1] > w[0]
    assert torch.isclose((w * prior).sum(), torch.tensor(1.0))


@pytest.mark.parametrize("head", ["bins", "regression"])
def test_chroma_gain_scales_the_decoded_ab_and_is_rebuilt_from_the_checkpoint(head, tmp_path):
    from edge_colorizer.checkpoint import load_model, save_model

    torch.manual_seed(0)
    plain = create_model("unet_s", head=head, width=8).eval()
    gained = create_model("unet_s", head=head, width=8, chroma_gain=1.25).eval()
    gained.load_state_dict(plain.state_dict())
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        base, more = plain(x), gained(x)
    assert base.abs().max() > 0.01 and torch.allclose(more, base * 1.25, atol=1e-6)  # hue kept, chroma x 1.25
    save_model(gained, tmp_path / "g.pt")
    rebuilt = load_model(tmp_path / "g.pt")
    assert rebuilt.chroma_gain == 1.25
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), more, atol=1e-6)
    assert plain.chroma_gain == 1.0 and "chroma_gain" not in plain.model_args  # the default stays out of the args
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="chroma_gain must be > 0 and finite"):
            create_model("unet_s", head=head, width=8, chroma_gain=bad)
