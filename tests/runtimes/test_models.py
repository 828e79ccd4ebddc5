"""Models as users name them: checkpoints run in torch, exported artifacts in their own runtime."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edge_colorizer.checkpoint import save_model
from edge_colorizer.cli import main
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.models import create_model
from runtimes.models import ArtifactColorizer, artifact_format, open_colorizer

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from runtimes.onnx import export

    folder = tmp_path_factory.mktemp("artifact")
    torch.manual_seed(0)
    net = create_model("unet_s", width=8).eval()
    save_model(net, folder / "tiny.pt", input_size=64)
    export(ColorizerModule(net, size=64), folder / "tiny.onnx")
    return folder


def test_formats_are_known_by_their_names():
    assert artifact_format("a/b/model_int8.onnx").name == "onnx"
    assert artifact_format("student_openvino").name == "openvino"
    assert artifact_format("x.tflite").name == "tflite" and artifact_format("m.mlpackage").name == "coreml"
    assert artifact_format("model.pt") is None and artifact_format(".onnx") is None


def test_an_artifact_opens_in_its_runtime_and_matches_its_checkpoint(artifact):
    rgb = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    onnx_model = open_colorizer(str(artifact / "tiny.onnx"))
    try:
        assert isinstance(onnx_model, ArtifactColorizer) and onnx_model.runner.runtime == "onnxruntime"
        torch_model = open_colorizer(str(artifact / "tiny.pt"))
        with torch.inference_mode():
            expected = torch_model(torch.from_numpy(rgb)[None])[0].numpy()
        assert np.abs(onnx_model(rgb).astype(int) - expected).max() <= 2
    finally:
        onnx_model.close()
    with pytest.raises(ValueError, match="--size does not apply"):
        open_colorizer(str(artifact / "tiny.onnx"), size=128)


def test_colorize_and_evaluate_take_an_artifact_and_export_refuses_one(tmp_path, artifact, real_photos):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(real_photos["coffee"][::8, ::8]).save(photos / "coffee.png")
    run = CliRunner().invoke(
        main, ["colorize", str(photos), "--out", str(tmp_path / "out"), "--model", str(artifact / "tiny.onnx")]
    )
    assert run.exit_code == 0 and (tmp_path / "out" / "coffee.png").exists()
    run = CliRunner().invoke(
        main, ["evaluate", "--data", str(photos), "--model", str(artifact / "tiny.onnx"), "--no-lpips"]
    )
    assert run.exit_code == 0 and "tiny.onnx" in run.output
    run = CliRunner().invoke(
        main, ["export", "--model", str(artifact / "tiny.onnx"), "--out", str(tmp_path / "x.onnx")]
    )
    assert run.exit_code == 1 and "is an exported onnx model" in run.output


def test_a_damaged_artifact_is_one_line_naming_it(artifact, tmp_path):
    whole = (artifact / "tiny.onnx").read_bytes()
    for name, data in (("cut.onnx", whole[: len(whole) // 3]), ("noise.onnx", bytes(range(256)) * 12)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"^{tmp_path / name}: not a valid onnx model for onnxruntime \(") as info:
            open_colorizer(str(tmp_path / name))
        assert "\n" not in str(info.value)
    result = CliRunner().invoke(
        main, ["colorize", str(tmp_path), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "noise.onnx")]
    )
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {tmp_path / 'noise.onnx'}: not a valid onnx")
    assert not (tmp_path / "o").exists()
