"""Core ML export: an ``mlprogram`` ``.mlpackage`` with image input and RGB image output (coremltools 9).

Core ML refuses uint8 tensors, so the model takes an image (RGB, or 8-bit gray with
``color_layout="G"``) whose pixels arrive as floats 0..255, and gives an RGB image: the app hands a
CVPixelBuffer (or a CGImage through Vision) and gets one back, with no casting of its own. Any size
from 64 to 4096 px per side runs in the one model: the graph is :class:`ImageColorizer`, whose L
resize and ab upsample are matrix products, converted through ``torch.export``. Compute is fp16 by
default; ``int8-weights`` (linear symmetric per-channel) and ``palettized`` (6-bit k-means) compress
the network's convolutions only, never the Lab math or the ab decoding.

Prediction needs macOS. On Linux the export is checked as far as it can be: the saved package loads
with ``skip_model_load``, its input/output types, shapes and deployment target are read back, its op
list is recorded, and the parity gate runs the exported module in torch with the artifact's numerics
emulated (fp16 everywhere, the same weight compression) — recorded as ``parity_kind: emulated``.
"""

from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.lab import AB_NORM, L_CENT, L_NORM, WHITE_D65
from edge_colorizer.stopping import check_stop
from runtimes.artifacts import ExportError, artifact_metadata, parity_gate, staged
from runtimes.formats import FORMATS
from runtimes.portable import FloatColorizer
from runtimes.runners import (
    INPUT_NAME,
    OUTPUT_NAME,
    BaseRunner,
    Exported,
    Parity,
    TensorMeta,
    TorchRunner,
    compare,
    export_ready,
    parity_images,
)

FORMAT = FORMATS["coreml"]
IMAGE_INPUT = "image"  # the Core ML feature names an app sees
IMAGE_OUTPUT = "rgb"
MIN_SIDE, MAX_SIDE, DEFAULT_SIDE = 64, 4096, 256
DEPLOYMENT_TARGET = "iOS16"  # the first with fp16 ML programs, image outputs and per-channel int8 weights
COLOR_LAYOUTS = ("RGB", "G")
PALETTE_BITS = 6  # per-tensor (iOS16) 6-bit palettes: teacher 49 / 1.38 emulated, 8-bit 64 / 1.04
# convolutions with fewer weights stay fp16 (coremltools' default threshold): the depthwise layers of the
# teacher's encoder cost 51 levels at int8 (emulated) when compressed, 5 when left alone
WEIGHT_THRESHOLD = 2048
AUTHOR = "edge-colorizer"
LICENSE = "MIT"


class ImageColorizer(nn.Module):
    """Core ML's graph: image (1, C, H, W), pixel values 0..255 as floats, C in {1, 3} -> RGB (1, 3, H, W) 0..255."""

    def __init__(self, colorizer: FloatColorizer):
        super().__init__()
        self.colorizer = colorizer

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.colorizer(image * (1.0 / 255.0)) * 255.0


class EmulatedRunner(BaseRunner):
    """Runs :class:`ImageColorizer` in torch as the .mlpackage would (fp16 compute, compressed weights), on
    uint8 NHWC like every runner: what can stand in for Core ML's prediction where there is no macOS."""

    runtime = "coreml-emulated"

    def __init__(self, module: ImageColorizer, half: bool, name: str = "coreml-emulated"):
        super().__init__(name)
        self.dtype = torch.float16 if half else torch.float32
        self.module = copy.deepcopy(module).to(self.dtype).eval()

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = []
        with torch.inference_mode():
            for image in np.ascontiguousarray(feeds[INPUT_NAME]):  # Core ML images are one at a time
                x = torch.from_numpy(image).permute(2, 0, 1)[None].to(self.dtype)
                rgb = self.module(x).float()  # Core ML's image output rounds and clamps to 8 bits
                outputs.append(rgb.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy())
        return {OUTPUT_NAME: np.stack(outputs)}


class CoreMLRunner(BaseRunner):
    """coremltools' MLModel.predict on an image: macOS only; elsewhere activation raises a clear error."""

    runtime = "coreml"

    def __init__(self, path: str | Path, threads: int = 0, name: str = "coreml"):
        super().__init__(name)
        self.path = Path(path)
        self.requested_threads = threads  # Core ML schedules its own threads and units
        self.model = None

    def activate(self) -> None:
        if platform.system() != "Darwin":
            raise RuntimeError(
                f"{self.path}: Core ML runs only on macOS/iOS (this is {platform.system()}); the export was "
                "checked here with fp16 emulation in torch (metadata parity_kind)"
            )
        import coremltools as ct

        self.model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit.ALL)
        self.gray = self.model.get_spec().description.input[0].type.imageType.colorSpace == 10  # GRAYSCALE

    def deactivate(self) -> None:
        self.model = None

    @property
    def inputs(self) -> list[TensorMeta]:
        channels = 1 if read_metadata(self.path).get("color_layout") == "G" else 3
        return [TensorMeta(INPUT_NAME, "uint8", (1, None, None, channels))]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        outputs = []
        for image in feeds[INPUT_NAME]:
            pil = Image.fromarray(
                image[..., 0] if image.shape[-1] == 1 else image, "L" if image.shape[-1] == 1 else "RGB"
            )
            pil = pil.convert("L" if self.gray else "RGB")
            rgb = self.model.predict({IMAGE_INPUT: pil})[IMAGE_OUTPUT]
            outputs.append(np.asarray(rgb.convert("RGB")))
        return {OUTPUT_NAME: np.stack(outputs)}


Runner = CoreMLRunner


def _exported_program(module: ImageColorizer, channels: int):
    # a 2-D ramp, not zeros: torch.export must not see a constant it could specialise on
    example = torch.linspace(0, 255, DEFAULT_SIDE * DEFAULT_SIDE).reshape(1, 1, DEFAULT_SIDE, DEFAULT_SIDE)
    example = example.expand(1, channels, -1, -1).contiguous()
    height = torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE)
    width = torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE)
    program = torch.export.export(module, (example,), dynamic_shapes={"image": {2: height, 3: width}})
    return program.run_decompositions({})


def _convert(module: ImageColorizer, color_layout: str, precision: str, target: str):
    import coremltools as ct

    side = ct.RangeDim(MIN_SIDE, MAX_SIDE, default=DEFAULT_SIDE)
    channels = 1 if color_layout == "G" else 3
    layout = ct.colorlayout.GRAYSCALE if color_layout == "G" else ct.colorlayout.RGB
    return ct.convert(
        _exported_program(module, channels),
        inputs=[ct.ImageType(name=IMAGE_INPUT, shape=(1, channels, side, side), color_layout=layout)],
        outputs=[ct.ImageType(name=IMAGE_OUTPUT, color_layout=ct.colorlayout.RGB)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
        minimum_deployment_target=getattr(ct.target, target),
        skip_model_load=True,
    )


def mil_ops(mlmodel) -> list[str]:
    """The sorted op types of a converted model's MIL program."""
    return sorted({op.op_type for f in mlmodel._mil_program.functions.values() for op in f.operations})


def _decode_convs(mlmodel, net: nn.Module) -> list[str]:
    """Names of the convs that decode ab bins (weight rows: bin centres' a, b, then ones): never compressed."""
    if getattr(net, "head_type", None) != "bins":
        return []
    names = []
    for f in mlmodel._mil_program.functions.values():
        for op in f.operations:
            if op.op_type != "conv" or op.inputs["weight"].val is None:
                continue
            w = np.asarray(op.inputs["weight"].val, dtype=np.float32)
            if w.shape[:2] == (3, net.bin_centers.shape[0]) and np.all(w[2] == 1.0):
                names.append(op.name)
    return names


def compress(mlmodel, precision: str, net: nn.Module):
    """``int8-weights`` or ``palettized`` weights of the network's convolutions (``fp16``/``fp32``: unchanged)."""
    import coremltools.optimize.coreml as cto

    if precision in ("fp16", "fp32"):
        return mlmodel
    if precision == "int8-weights":
        op_config = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD
        )
        compressor = cto.linear_quantize_weights
    else:
        op_config = cto.OpPalettizerConfig(
            mode="kmeans", nbits=PALETTE_BITS, granularity="per_tensor", weight_threshold=WEIGHT_THRESHOLD
        )
        compressor = cto.palettize_weights
    config = cto.OptimizationConfig(
        op_type_configs={"conv": op_config}, op_name_configs=dict.fromkeys(_decode_convs(mlmodel, net))
    )
    return compressor(mlmodel, config=config)


def emulate_compression(net: nn.Module, precision: str) -> None:
    """Apply ``precision``'s weight compression to ``net``'s convolutions in place, as ``compress`` does
    to the Core ML program (there the weights have batch norms folded in: int8 per-channel scaling is
    unaffected by that, k-means palettes are not, so the palettized emulation is approximate)."""
    if precision not in ("int8-weights", "palettized"):
        return
    with torch.no_grad():
        for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
            w = conv.weight.detach().to(torch.float16).float()
            if w.numel() <= WEIGHT_THRESHOLD:  # coremltools compresses sizes above the threshold
                continue
            if precision == "int8-weights":
                scale = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12) / 127.0
                conv.weight.copy_((w / scale).round().clamp(-127, 127) * scale)
            else:
                from coremltools.models.neural_network.quantization_utils import _get_kmeans_lookup_table_and_weight

                lut, indices = _get_kmeans_lookup_table_and_weight(PALETTE_BITS, w.numpy().astype(np.float16))
                conv.weight.copy_(torch.from_numpy(lut.reshape(-1)[indices].reshape(w.shape).astype(np.float32)))


def emulated_parity(colorizer: ColorizerModule, precision: str, images: list[np.ndarray] | None = None) -> Parity:
    """How far the artifact's numerics (fp16 compute unless fp32, the same weight compression) take the
    exported graph from torch fp32's ``ColorizerModule``, on ``images`` (default ``parity_images()``)."""
    module = ImageColorizer(FloatColorizer.from_colorizer(export_ready(colorizer))).eval()  # a copy
    emulate_compression(module.colorizer.net, precision)
    with TorchRunner(colorizer) as reference, EmulatedRunner(module, half=precision != "fp32") as runner:
        return compare(reference, runner, images if images is not None else parity_images())


def check_package(path: Path, color_layout: str, target: str) -> dict[str, str]:
    """Read the saved package back without Core ML (``skip_model_load``) and check what Linux can check."""
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    (inp,), (out,) = spec.description.input, spec.description.output
    problems = []
    if inp.name != IMAGE_INPUT or inp.type.WhichOneof("Type") != "imageType":
        problems.append(f"input {inp.name!r} is {inp.type.WhichOneof('Type')}, not an image")
    elif ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(inp.type.imageType.colorSpace) != (
        "GRAYSCALE" if color_layout == "G" else "RGB"
    ):
        problems.append("input colour space differs from the requested layout")
    size_range = inp.type.imageType.imageSizeRange
    if (size_range.heightRange.lowerBound, size_range.heightRange.upperBound) != (MIN_SIDE, MAX_SIDE):
        problems.append(f"input height range is {size_range.heightRange}, not {MIN_SIDE}..{MAX_SIDE}")
    if out.name != IMAGE_OUTPUT or out.type.WhichOneof("Type") != "imageType":
        problems.append(f"output {out.name!r} is {out.type.WhichOneof('Type')}, not an image")
    minimum = ct.target.__members__[target].value
    if spec.specificationVersion < minimum or not spec.WhichOneof("Type") == "mlProgram":
        problems.append(
            f"spec version {spec.specificationVersion} / {spec.WhichOneof('Type')}: not an {target} mlprogram"
        )
    if problems:
        raise RuntimeError(f"{path}: the saved package is not what was asked: {'; '.join(problems)}")
    return {"spec_version": str(spec.specificationVersion)}


def export(
    colorizer: ColorizerModule,
    out: str | Path,
    precision: str = "fp16",
    calibration: list[np.ndarray] | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    *,
    color_layout: str = "RGB",
    deployment_target: str = DEPLOYMENT_TARGET,
    force: bool = False,
) -> Exported:
    """Convert ``colorizer`` to the ``.mlpackage`` folder ``out`` at ``precision``.

    ``color_layout``: ``RGB`` (default) or ``G`` (8-bit gray input). ``calibration`` is not used: every
    Core ML precision here compresses weights only. Raises ExportError when the emulated parity is
    beyond the table's tolerance (nothing is left behind).
    """
    import coremltools as ct

    out = Path(out)
    if precision not in FORMAT.precisions:
        raise ValueError(f"coreml: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    if color_layout not in COLOR_LAYOUTS:
        raise ValueError(f"coreml: color_layout must be one of {', '.join(COLOR_LAYOUTS)}, got {color_layout!r}")
    if deployment_target not in ct.target.__members__:
        raise ValueError(f"coreml: unknown deployment target {deployment_target!r}")
    started = time.perf_counter()
    with staged(out, force=force, folder=True) as tmp:
        parity = emulated_parity(colorizer, precision)
        parity_gate(out, parity, FORMAT.tolerances[precision])
        ready = export_ready(colorizer)
        module = ImageColorizer(FloatColorizer.from_colorizer(ready)).eval()
        try:
            mlmodel = compress(_convert(module, color_layout, precision, deployment_target), precision, ready.net)
        except Exception as exc:  # torch.export and coremltools raise many types; one line naming the file
            check_stop()  # a stop that a library swallowed is no failure to go on past
            raise ExportError(f"{out}: Core ML conversion failed ({exc.__class__.__name__}: {str(exc)[:300]})") from exc
        ops = mil_ops(mlmodel)
        metadata = artifact_metadata(
            colorizer,
            "coreml",
            precision,
            model_name,
            checkpoint,
            input=json.dumps(
                {
                    "name": IMAGE_INPUT,
                    "type": "image",
                    "color_layout": color_layout,
                    "pixels": "0..255",
                    "sides": [MIN_SIDE, MAX_SIDE],
                }
            ),
            output=json.dumps({"name": IMAGE_OUTPUT, "type": "image", "color_layout": "RGB"}),
            color_layout=color_layout,
            deployment_target=deployment_target,
            compute_precision="fp32" if precision == "fp32" else "fp16",
            compression={
                "int8-weights": "linear symmetric per-channel int8",
                "palettized": f"{PALETTE_BITS}-bit k-means",
            }.get(precision, "none")
            + ("; network convolutions only" if precision in ("int8-weights", "palettized") else ""),
            graph="runtimes.coreml.ImageColorizer via torch.export (float Lab kernel, matrix resizes)",
            converter=f"coremltools {ct.__version__}",
            mil_ops=json.dumps(ops),
            parity_kind="emulated: torch fp16 (fp32 for fp32) with the same weight compression; Core ML not run",
            parity_max=str(parity.max_abs),
            parity_mean=f"{parity.mean_abs:.5f}",
            parity_tolerance=json.dumps(list(FORMAT.tolerances[precision])),
        )
        mlmodel.author = AUTHOR
        mlmodel.license = LICENSE
        mlmodel.short_description = (
            f"Automatic colorization ({model_name or 'colorizer'}): a gray or colour photo in, the same photo "
            "coloured out. CIELab (D65): L is kept from the input, ab are predicted."
        )
        mlmodel.version = metadata["producer"].split()[-1]
        mlmodel.input_description[IMAGE_INPUT] = (
            f"{'8-bit gray' if color_layout == 'G' else 'RGB'} photo, {MIN_SIDE} to {MAX_SIDE} px per side"
        )
        mlmodel.output_description[IMAGE_OUTPUT] = "the coloured photo, RGB, the input's size; L is the input's"
        metadata["lab_constants"] = json.dumps(
            {"white": WHITE_D65, "l_cent": L_CENT, "l_norm": L_NORM, "ab_norm": AB_NORM}
        )
        metadata["export_seconds"] = f"{time.perf_counter() - started:.1f}"
        mlmodel.user_defined_metadata.update(metadata)
        mlmodel.save(str(tmp))
        metadata.update(check_package(tmp, color_layout, deployment_target))
    return Exported(out, parity, metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The user-defined metadata of a saved .mlpackage (read without Core ML)."""
    import coremltools as ct

    return dict(ct.models.MLModel(str(path), skip_model_load=True).user_defined_metadata)
