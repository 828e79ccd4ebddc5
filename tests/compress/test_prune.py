import csv
import dataclasses

import numpy as np
import pytest
import torch

from compress.prune import PruneConfig, prune, prune_channels, ratio_for_gmacs, round_ratios
from edge_colorizer.checkpoint import load_checkpoint, load_model, save_model
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.models import create_model
from edge_colorizer.models.profile import count_macs
from tests.training.test_train import QUIET, tiny_cfg, tiny_pool  # noqa: F401  (fixture)

pytest.importorskip("torch_pruning")

ARCHITECTURES = {
    "unet_s": dict(width=8),
    "unet_m": dict(width=8),
    # the teacher's generator: EfficientNet-Lite0 encoder (depthwise convolutions, TF padding), skips
    "unet_generator": dict(encoder="efficientnet_lite0", pretrained=False, decoder_width=8),
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_pruning_keeps_the_interface_and_cuts_compute(tmp_path, name):
    torch.manual_seed(0)
    net = create_model(name, head="bins", **ARCHITECTURES[name]).eval()
    x = torch.randn(2, 1, 48, 48)
    before_out, before_macs = net(x), count_macs(net, 64)
    prune_channels(net, 0.5)
    after_out = net(x)
    assert after_out.shape == before_out.shape  # ab at the same stride, and the head still has 265 bins
    assert net.head.out_channels == 265 and net.pruned
    assert count_macs(net, 64) < 0.5 * before_macs  # half the channels: about a quarter of the MACs
    save_model(net, tmp_path / "p.pt", input_size=64)
    again = load_model(tmp_path / "p.pt")  # weights_only=True, rebuilt from the channel plan
    assert torch.equal(again(x), after_out)


@pytest.mark.parametrize("name", ["unet_s", "unet_generator"])
def test_a_pruned_network_exports_to_onnx_with_parity(tmp_path, name):
    pytest.importorskip("onnxruntime")
    from runtimes.onnx import export_onnx

    net = prune_channels(create_model(name, head="bins", **ARCHITECTURES[name]).eval(), 0.4)
    _, parity = export_onnx(ColorizerModule(net, size=64), tmp_path / "p.onnx")
    assert parity.max_abs <= 2


def test_round_ratios_remove_the_total_share_linearly():
    shares = round_ratios(0.5, 2)
    assert shares[0] == pytest.approx(0.25) and (1 - shares[0]) * (1 - shares[1]) == pytest.approx(0.5)
    assert round_ratios(0.3, 1) == [pytest.approx(0.3)]


def test_a_macs_target_is_reached():
    net = create_model("unet_s", head="bins", width=8)
    full = count_macs(net, 64) / 1e9
    ratio = ratio_for_gmacs(net, full / 3, 64, "group_norm", 0)
    assert count_macs(prune_channels(net, ratio), 64) / 1e9 <= full / 3
    with pytest.raises(ValueError, match="already needs"):
        ratio_for_gmacs(net, full * 2, 64, "group_norm", 0)


def test_prune_command_runs_rounds_distils_from_the_parent_and_resumes(tmp_path, tiny_pool):  # noqa: F811
    parent = tmp_path / "parent.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), parent, input_size=64)
    parent_before = {k: v.clone() for k, v in load_model(parent).state_dict().items()}
    ft = tiny_cfg(tmp_path, tiny_pool, steps=2, batch_size=3, ckpt_every=1)
    cfg = PruneConfig(parent=str(parent), out=str(tmp_path / "pruned"), finetune=ft, ratio=0.5, rounds=2)
    assert not prune(cfg, stop_after=3, **QUIET).finished  # cut inside the second round's fine-tuning
    result = prune(cfg, resume=True, **QUIET)
    assert result.finished
    ckpt = load_checkpoint(result.path)
    assert ckpt["input_size"] == 64 and "channel_plan" in ckpt
    assert "distilled from" in ckpt["card"]["method"] and (tmp_path / "pruned" / "CARD.md").exists()
    before, after = (float(v) for v in ckpt["card"]["GMACs"].split(" at ")[0].split(" -> "))
    assert after < 0.5 * before
    assert load_model(result.path).stem.body[0].out_channels == 4  # 8 channels, half cut
    rows = list(csv.DictReader(open(tmp_path / "pruned" / "round2" / "log.csv")))
    assert rows and all(float(r["kd"]) > 0 for r in rows)  # the fine-tuning distilled (KD term logged)
    # the parent file is untouched
    assert all(torch.equal(v, parent_before[k]) for k, v in load_model(parent).state_dict().items())
    colorizer = ColorizerModule(load_model(result.path), size=64).eval()
    out = colorizer(torch.from_numpy(np.full((1, 40, 50, 1), 128, np.uint8)))
    assert out.shape == (1, 40, 50, 3)
    with pytest.raises(ValueError, match=r"pruned with another importance, ratio; resume with the same options"):
        prune(dataclasses.replace(cfg, ratio=0.7, importance="magnitude"), resume=True, **QUIET)


def test_prune_refuses_before_any_work_what_would_lose_or_reuse_a_run(tmp_path, tiny_pool):  # noqa: F811
    from click.testing import CliRunner

    from edge_colorizer.cli import main

    parent = tmp_path / "parent.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), parent, input_size=64)
    empty = tmp_path / "empty_val"
    empty.mkdir()
    args = ["compress", "prune", "--model", str(parent), "--data", str(tiny_pool), "--steps", "2", "--size", "32"]
    cases = [
        (["--out", str(tiny_pool / "o")], "is inside --data"),
        (["--out", str(tmp_path / "o"), "--val", str(empty)], "no photos to evaluate"),
        (["--out", str(tmp_path / "o"), "--no-distill", "--kd-weight", "0.9"], "--kd-weight"),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code in (1, 2) and message in result.output, (extra, result.output)
        assert not (tmp_path / "o").exists() and not (tiny_pool / "o").exists()
    earlier = tmp_path / "earlier" / "round1"
    earlier.mkdir(parents=True)
    save_model(create_model("unet_s", head="bins", width=8).eval(), earlier / "model.pt")
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "earlier")])
    assert result.exit_code == 1 and "holds an earlier run (round1/model.pt); continue it with --resume" in (
        result.output
    )
    assert sorted(p.name for p in earlier.iterdir()) == ["model.pt"]  # nothing pruned or written


def test_a_round_refused_before_its_first_step_leaves_nothing(tmp_path, tiny_pool):  # noqa: F811
    parent = tmp_path / "parent.pt"
    save_model(create_model("unet_s", head="bins", width=8).eval(), parent, input_size=64)
    ft = tiny_cfg(tmp_path, tiny_pool, steps=2, batch_size=500)  # more than the pool holds
    cfg = PruneConfig(parent=str(parent), out=str(tmp_path / "pruned"), finetune=ft, ratio=0.5, rounds=2)
    with pytest.raises(ValueError, match="fewer than one batch of 500"):
        prune(cfg, **QUIET)
    assert not (tmp_path / "pruned" / "round1").exists()
