import pytest
import torch

from edge_colorizer.checkpoint import load_checkpoint, load_model, save_model
from edge_colorizer.models import create_model


def test_checkpoint_rebuilds_model_with_weights_only(tmp_path):
    model = create_model("unet_s", head="bins", width=8).eval()
    path = tmp_path / "m.pt"
    save_model(model, path, note="x")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["model_name"] == "unet_s" and ckpt["model_args"] == {"head": "bins", "width": 8}
    again = load_model(path)
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(model(x), again(x))


def test_half_checkpoint_is_smaller_and_close(tmp_path):
    model = create_model("unet_s", head="regression", width=8).eval()
    save_model(model, tmp_path / "f.pt")
    save_model(model, tmp_path / "h.pt", half=True)
    assert (tmp_path / "h.pt").stat().st_size < 0.7 * (tmp_path / "f.pt").stat().st_size
    x = torch.randn(1, 1, 32, 32)
    assert (load_model(tmp_path / "h.pt")(x) - model(x)).abs().max() < 1e-2


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_checkpoint(tmp_path / "nothere.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not an edge-colorizer checkpoint"):
        load_checkpoint(other)


def test_save_leaves_no_temporary_files(tmp_path):
    save_model(create_model("unet_s", width=8), tmp_path / "m.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_model_not_from_registry_is_refused(tmp_path):
    with pytest.raises(ValueError, match="create_model"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")


def test_a_killed_writers_temporary_is_removed_by_the_next_save(tmp_path):
    (tmp_path / ".m.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    save_model(create_model("unet_s", width=8), tmp_path / "m.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
