import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, distribution, distributions, version

import numpy as np
import pytest
import torch

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, TensorMeta, TorchRunner, compare, parity_images

ct = pytest.importorskip("coremltools")

from runtimes import coreml  # noqa: E402
from runtimes.artifacts import ExportError  # noqa: E402
from runtimes.portable import FloatColorizer  # noqa: E402

TOLERANCES = FORMATS["coreml"].tolerances
on_macos = pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML predicts only on macOS")


@pytest.fixture(scope="module")
def fp16(tmp_path_factory, tiny, tiny_checkpoint):
    """One real fp16 conversion; the compressed precisions below compress its converted program."""
    colorizer = tiny
    programs = []
    convert = coreml._convert

    def spy(*args):
        programs.append(convert(*args))
        return programs[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coreml, "_convert", spy)
        path = tmp_path_factory.mktemp("coreml") / "m.mlpackage"
        exported = coreml.export(colorizer, path, model_name="tiny", checkpoint=tiny_checkpoint)
    return colorizer, exported, programs[0]


def test_package_loads_without_core_ml_and_has_image_io(fp16):
    _, exported, _ = fp16
    assert exported.path.is_dir() and exported.path.suffix == ".mlpackage"
    spec = ct.models.MLModel(str(exported.path), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == ct.target.iOS16.value  # the minimum deployment target
    (inp,), (out,) = spec.description.input, spec.description.output
    assert inp.name == "image" and inp.type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    ranges = inp.type.imageType.imageSizeRange
    assert (ranges.widthRange.lowerBound, ranges.widthRange.upperBound) == (64, 4096)
    assert (ranges.heightRange.lowerBound, ranges.heightRange.upperBound) == (64, 4096)
    assert out.name == "rgb" and out.type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    assert inp.shortDescription.startswith("RGB photo") and out.shortDescription


def test_metadata_describes_the_artifact(fp16, tiny_checkpoint):
    _, exported, _ = fp16
    model = ct.models.MLModel(str(exported.path), skip_model_load=True)
    assert model.author == "edge-colorizer" and model.license == "MIT" and "colorization" in model.short_description
    meta = coreml.read_metadata(exported.path)
    assert meta["format"] == "coreml" and meta["precision"] == "fp16" and meta["compute_precision"] == "fp16"
    assert meta["model"] == "tiny" and meta["deployment_target"] == "iOS16"
    assert meta["checkpoint_sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert json.loads(meta["lab_constants"]) == {
        "white": [0.95047, 1.0, 1.08883],
        "l_cent": 50.0,
        "l_norm": 100.0,
        "ab_norm": 110.0,
    }
    assert meta["parity_kind"].startswith("emulated") and int(meta["parity_max"]) == exported.parity.max_abs


def test_op_list_is_portable(fp16):
    _, exported, program = fp16
    ops = json.loads(coreml.read_metadata(exported.path)["mil_ops"])
    assert ops == coreml.mil_ops(program)
    assert {"conv", "matmul", "pow", "select"} <= set(ops)  # the network, the resizes, the Lab kernel
    # image in and out, fp16 inside: casts at the ends, nothing that needs a dynamic uint8 tensor
    assert "cast" in ops and not [op for op in ops if op.startswith("constexpr")]


def test_fp16_emulated_parity_is_within_the_table(fp16):
    assert fp16[1].parity.within(*TOLERANCES["fp16"])


def test_lab_kernel_round_trip_in_fp16_costs_at_most_3_levels():
    """The Lab math alone (ab = 0: gray in, gray out) in fp16, as Core ML computes it, against fp32."""
    rng = np.random.default_rng(0)
    levels = np.repeat(np.arange(256, dtype=np.uint8), 16).reshape(1, 64, 64, 1)
    images = [np.repeat(levels, 3, axis=3), rng.integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)]
    gray = ColorizerModule(GrayBaseline(), size=32).eval()
    module = coreml.ImageColorizer(FloatColorizer.from_colorizer(gray))
    with TorchRunner(gray) as reference, coreml.EmulatedRunner(module, half=True) as half:
        parity = compare(reference, half, images)
    assert parity.max_abs <= 3 and parity.mean_abs <= 0.5


@pytest.mark.parametrize("precision", ["int8-weights", "palettized"])
def test_compressed_precisions(tmp_path, monkeypatch, fp16, precision):
    colorizer, exported_fp16, program = fp16
    monkeypatch.setattr(coreml, "_convert", lambda *args: program)
    exported = coreml.export(colorizer, tmp_path / "c.mlpackage", precision)
    assert exported.parity.within(*TOLERANCES[precision])
    ops = json.loads(exported.metadata["mil_ops"])
    assert ("constexpr_affine_dequantize" if precision == "int8-weights" else "constexpr_lut_to_dense") in ops
    size = sum(f.stat().st_size for f in exported.path.rglob("*") if f.is_file())
    size_fp16 = sum(f.stat().st_size for f in exported_fp16.path.rglob("*") if f.is_file())
    assert size < 0.8 * size_fp16


def test_the_ab_decoding_is_never_compressed(fp16):
    colorizer, _, program = fp16
    (decode,) = coreml._decode_convs(program, colorizer.net)
    model = coreml.compress(program, "int8-weights", colorizer.net)
    convs = {op.name: op for f in model._mil_program.functions.values() for op in f.operations if op.op_type == "conv"}
    assert convs[decode].inputs["weight"].op.op_type == "const"
    # the others: compressed exactly when they hold more than WEIGHT_THRESHOLD weights
    compressed = {name: op.inputs["weight"].op.op_type.startswith("constexpr") for name, op in convs.items()}
    large = {name: np.prod(op.inputs["weight"].shape) > coreml.WEIGHT_THRESHOLD for name, op in convs.items()}
    assert sum(compressed.values()) >= 10
    assert compressed == {name: large[name] and name != decode for name in convs}


def test_runner_says_it_needs_macos(fp16):
    runner = coreml.Runner(fp16[1].path)
    assert runner.inputs == [TensorMeta(INPUT_NAME, "uint8", (1, None, None, 3))]
    if platform.system() != "Darwin":
        with pytest.raises(RuntimeError, match="Core ML runs only on macOS"):
            runner.activate()


class Fp16Overflow(torch.nn.Module):
    """Fine in fp32, inf - inf = nan in fp16 (65504 is fp16's largest value): fails the emulated parity."""

    def forward(self, l_norm):
        big = (l_norm + 1.0) * 1e5
        return (big - big + 0.2).expand(-1, 2, -1, -1)


def test_parity_failure_fails_the_export_and_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match="parity check failed"):
        coreml.export(ColorizerModule(Fp16Overflow(), size=64), tmp_path / "bad.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_a_conversion_failure_leaves_nothing(tmp_path, monkeypatch, tiny):
    def fail(*args):
        raise NotImplementedError("Core ML does not have general support for non-contiguous dim order")

    monkeypatch.setattr(coreml, "_convert", fail)
    with pytest.raises(ExportError, match=r"bad\.mlpackage: Core ML conversion failed \(NotImplementedError"):
        coreml.export(tiny, tmp_path / "bad.mlpackage")
    with pytest.raises(ValueError, match="color_layout"):
        coreml.export(tiny, tmp_path / "bad.mlpackage", color_layout="BGR")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_gray_input_in_fp32(tmp_path, tiny):
    exported = coreml.export(tiny, tmp_path / "g.mlpackage", "fp32", color_layout="G")
    spec = ct.models.MLModel(str(exported.path), skip_model_load=True).get_spec()
    assert spec.description.input[0].type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.GRAYSCALE
    assert exported.metadata["compute_precision"] == "fp32" and exported.parity.within(*TOLERANCES["fp32"])
    assert coreml.Runner(exported.path).inputs[0].shape == (1, None, None, 1)


@pytest.mark.slow
def test_bundled_student_at_256_in_fp32(tmp_path):
    from edge_colorizer.inference import load_colorizer

    exported = coreml.export(load_colorizer("student"), tmp_path / "student.mlpackage", "fp32", model_name="student")
    assert exported.parity.within(*TOLERANCES["fp32"]) and exported.metadata["model"] == "student"


@pytest.mark.coreml
@on_macos
@pytest.mark.parametrize("precision", ["fp16", "int8-weights"])
def test_prediction_matches_torch(tmp_path, tiny, precision):
    colorizer = tiny
    exported = coreml.export(colorizer, tmp_path / "m.mlpackage", precision)
    with TorchRunner(colorizer) as reference, coreml.Runner(exported.path) as runner:
        out = runner.infer({INPUT_NAME: parity_images()[0]})[OUTPUT_NAME]
        parity = compare(reference, runner, parity_images())
    assert out.dtype == np.uint8 and out.shape[-1] == 3
    assert parity.within(*TOLERANCES[precision])


def _requirements_met(dist: str, skip: tuple[str, ...] = ()) -> list[str]:
    """The requirements of an installed ``dist`` (no extras) that the installed packages do not meet."""
    from packaging.requirements import Requirement

    unmet = []
    for line in distribution(dist).requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.name in skip:
            continue
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                unmet.append(f"{dist}: {req} (installed {version(req.name)})")
        except PackageNotFoundError:
            unmet.append(f"{dist}: {req} (missing)")
    return unmet


def test_the_litert_and_coreml_sdks_import_together():
    """The two extras in one environment: xdsl (litert-torch's, when installed) caps typing_extensions below
    4.13 and cattrs 25.3+ needs 4.14, so the coreml extra pins cattrs<25.3 (see pyproject.toml)."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    import ai_edge_litert.interpreter  # noqa: F401
    import cattrs  # noqa: F401
    import coremltools.optimize.coreml  # noqa: F401
    import litert_torch  # noqa: F401

    from runtimes import litert  # noqa: F401

    unmet = [*_requirements_met("coremltools"), *_requirements_met("cattrs"), *_requirements_met("ai-edge-litert")]
    try:
        unmet += _requirements_met("xdsl")
    except PackageNotFoundError:
        pass  # `make install`'s lean set: installed with --no-deps, xdsl is not needed to convert
    assert unmet == []
    names = [d.metadata["Name"].lower() for d in distributions()]
    assert names.count("torch") == 1 and [n for n in names if n.startswith("nvidia")] == []
