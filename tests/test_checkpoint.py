import re
from pathlib import Path

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


def _pruned_unet(width=8):
    """unet_s with some layers narrowed by hand, as structured pruning leaves it."""
    from edge_colorizer.models.structure import apply_channel_plan, channel_plan

    model = create_model("unet_s", head="bins", width=width)
    plan = channel_plan(model)
    plan["stem.body.0"] = [1, 5, 1]  # stem conv 8 -> 5 outputs, and everything that reads them
    plan["stem.body.1"] = [5]
    plan["stem.body.3"] = [5, 5, 1]
    plan["stem.body.4"] = [5]
    plan["stem.skip.0"] = [1, 5, 1]
    plan["stem.skip.1"] = [5]
    plan["down.0.body.0"][0] = 5
    plan["down.0.skip.0"][0] = 5
    apply_channel_plan(model, plan)
    model.pruned = True
    return model.eval()


def test_a_pruned_network_round_trips(tmp_path):
    model = _pruned_unet()
    x = torch.randn(1, 1, 32, 32)
    save_model(model, tmp_path / "p.pt", input_size=192)
    ckpt = torch.load(tmp_path / "p.pt", weights_only=True)
    assert ckpt["channel_plan"]["stem.body.0"] == [1, 5, 1] and ckpt["input_size"] == 192
    again = load_model(tmp_path / "p.pt")
    assert again.stem.body[0].out_channels == 5 and again.input_size == 192 and again.pruned
    assert torch.equal(model(x), again(x))
    save_model(again, tmp_path / "p2.pt")  # and the reloaded one saves its plan again
    assert torch.load(tmp_path / "p2.pt", weights_only=True)["channel_plan"] == ckpt["channel_plan"]


def _forge(tmp_path, **changes):
    ckpt = torch.load(_saved(tmp_path), weights_only=True)
    ckpt.update(changes)
    path = tmp_path / "forged.pt"
    torch.save(ckpt, path)
    return path


def _saved(tmp_path):
    path = tmp_path / "m.pt"
    if not path.exists():
        save_model(create_model("unet_s", head="bins", width=8), path)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_args": {"head": "bins", "width": 2048}}, "weight stem.body.0.weight has shape"),
        ({"model_args": {"head": "bins", "width": 8, "colour": 3}}, "cannot rebuild model 'unet_s'"),
        ({"model_args": {"head": "nope", "width": 8}}, "cannot rebuild model"),
        ({"model_name": "unet_xl"}, "cannot rebuild model 'unet_xl'"),
        ({"model_args": "width=8"}, "malformed checkpoint"),
        ({"channel_plan": {"stem.body.0": [1, -3, 1]}}, "malformed"),
        ({"channel_plan": {"no.such.layer": [1, 3, 1]}}, "does not have"),
    ],
)
def test_forged_checkpoints_fail_in_one_line_before_allocating(tmp_path, changes, message):
    import resource

    path = _forge(tmp_path, **changes)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    # width 2048 would need gigabytes: it is refused from the meta-device skeleton
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_renamed_or_missing_weights_are_named(tmp_path):
    ckpt = torch.load(_saved(tmp_path), weights_only=True)
    ckpt["state_dict"]["stem.body.0.weight_renamed"] = ckpt["state_dict"].pop("stem.body.0.weight")
    torch.save(ckpt, tmp_path / "renamed.pt")
    with pytest.raises(ValueError, match="missing stem.body.0.weight"):
        load_model(tmp_path / "renamed.pt")


def test_pretrained_inside_a_checkpoint_never_downloads(tmp_path, monkeypatch):
    model = create_model("unet_generator", encoder="resnet18", pretrained=False, decoder_width=8)
    save_model(model, tmp_path / "g.pt")
    ckpt = torch.load(tmp_path / "g.pt", weights_only=True)
    ckpt["model_args"]["pretrained"] = True  # as a forged or hand-edited file would say
    torch.save(ckpt, tmp_path / "g2.pt")

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    assert load_model(tmp_path / "g2.pt").model_args["pretrained"] is False


class Payload:
    """Any class a weights-only load does not know: what a malicious pickle would smuggle in."""


def test_a_refused_pickle_is_reported_in_one_line(tmp_path):
    path = tmp_path / "pickle.pt"
    torch.save({"model_name": "unet_s", "state_dict": {}, "x": Payload()}, path)
    with pytest.raises(ValueError, match=r"refused: the file stores Python objects \(.*Payload\)") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)


def _npz_bytes() -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, a=np.ones(3))
    return buf.getvalue()


def test_files_that_are_no_checkpoint_say_what_they_are(tmp_path, recwarn):
    import pickle

    good = tmp_path / "good.pt"
    torch.save({"x": torch.ones(3)}, good)
    whole = good.read_bytes()
    cases = {
        "photo.pt": Path(__file__).parents[1].joinpath("examples", "coffee_gray.jpg").read_bytes(),
        "text.pt": b"hello world\n",
        "pickle.pt": pickle.dumps({"a": 1}, protocol=4),
        "random.pt": bytes(range(256)) * 8,
        "cut.pt": whole[: len(whole) // 2],
        "empty.pt": b"",
        "arrays.pt": _npz_bytes(),
    }
    reasons = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError) as info:
            load_checkpoint(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: ") and "\n" not in str(info.value)
        reasons[name] = str(info.value).split(": ", 1)[1]
    for name in ("photo.pt", "text.pt", "pickle.pt", "random.pt"):
        assert reasons[name].startswith("not a torch checkpoint file"), reasons
    assert reasons["cut.pt"].startswith("a damaged torch file") and reasons["empty.pt"].startswith("empty file")
    assert reasons["arrays.pt"].startswith("a zip archive, not a torch checkpoint")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(ValueError, match="a folder, not a checkpoint file"):
        load_checkpoint(tmp_path / "folder.pt")
    assert not [w for w in recwarn if "pickle" in str(w.message)]  # torch's warning does not reach the user


def test_checkpoints_from_before_the_classifier_left_the_teacher_still_load(tmp_path):
    from edge_colorizer.models.encoders import EfficientNetLite0

    model = create_model("unet_generator", pretrained=False, decoder_width=8).eval()
    save_model(model, tmp_path / "new.pt")
    ckpt = torch.load(tmp_path / "new.pt", weights_only=True)
    # what the first teachers held: the EfficientNet classifier head beside the encoder's layers
    head = EfficientNetLite0(classifier=True)
    for key, value in head.state_dict().items():
        if key.startswith(("_conv_head.", "_bn1.", "_fc.")):
            ckpt["state_dict"][f"encoder.backbone.{key}"] = value
    torch.save(ckpt, tmp_path / "old.pt")
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(load_model(tmp_path / "old.pt")(x), model(x))
    ckpt["state_dict"]["encoder.backbone._blocks.99.weight"] = torch.zeros(1)  # anything else is still refused
    torch.save(ckpt, tmp_path / "forged.pt")
    with pytest.raises(ValueError, match="unexpected encoder.backbone._blocks.99.weight"):
        load_model(tmp_path / "forged.pt")


def test_a_failed_write_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import edge_colorizer.checkpoint as ck

    def full_disk(obj, f):
        f.write(b"part of it")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4089024 vs 4088912")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 4096, 4096))
    target = tmp_path / "model.pt"
    expected = rf"^{re.escape(str(target))}: could not be written \(no space left on its disk\)$"
    with pytest.raises(OSError, match=expected):
        ck.atomic_torch_save({"a": 1}, target)
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
