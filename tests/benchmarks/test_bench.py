import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from benchmarks.bench import BenchConfig, lpips_gate, pareto_front, run_bench, write_outputs
from edge_colorizer.checkpoint import save_model
from edge_colorizer.cli import main
from edge_colorizer.models import create_model
from edge_colorizer.models.profile import count_macs, count_params

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, real_photos):
    root = tmp_path_factory.mktemp("bench")
    data = root / "eval"
    data.mkdir()
    for name in ("chelsea", "coffee"):
        Image.fromarray(real_photos[name][::3, ::3]).save(data / f"{name}.png")
    ckpt = root / "tiny.pt"
    save_model(create_model("unet_s", width=8).eval(), ckpt)
    return root, data, ckpt


def tiny_bench(root, name, models, runtimes=("torch",), **kw):
    """A benchmark config small enough for a test: 32x32 network and timing, two timed runs."""
    base = dict(size=32, time_height=32, time_width=32, repeats=2, warmup=1, throughput_batch=2)
    return BenchConfig(
        models=models, runtimes=runtimes, data=str(root / "eval"), out=str(root / name), **{**base, **kw}
    )


def test_macs_of_a_known_conv():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1))
    assert count_macs(net, 8) == 8 * 8 * 4 * 9
    assert count_params(net) == 4 * 9 + 4


def test_bench_rows_outputs_and_gate(setup):
    root, data, ckpt = setup
    cfg = tiny_bench(
        root, "out", ("gray", str(ckpt)), ("onnxruntime", "torch"), size=64, time_height=48, time_width=64, repeats=3
    )
    rows, n = run_bench(cfg, log=lambda *_: None)
    assert n == 2 and [(r.model, r.runtime) for r in rows] == [
        ("gray (ab=0)", "torch"),
        ("gray (ab=0)", "onnxruntime"),
        ("tiny", "torch"),
        ("tiny", "onnxruntime"),
    ]
    gray, _, tiny_t, tiny_o = rows
    for protocol in ("paper", "deploy"):
        q = gray.quality[protocol]
        assert q["cf"] < 1 and q["dcf"] < -10 and 0 < q["lpips"] < 1 and 10 < q["psnr"] < 40
        assert tiny_o.quality[protocol]["lpips"] == pytest.approx(tiny_t.quality[protocol]["lpips"], abs=1e-3)
    assert tiny_o.parity_max <= 2 and tiny_t.params == tiny_o.params > 0 and tiny_t.gmacs > 0
    assert all(r.p50_ms <= r.p95_ms and r.img_per_s > 0 for r in rows)
    paths = write_outputs(rows, cfg, n)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    table = list(csv.reader(open(paths["csv"])))
    assert table[0][:4] == ["protocol", "model", "runtime", "precision"] and len(table) == 1 + 2 * 4
    assert json.loads(paths["json"].read_text())["images"] == 2
    assert "| gray (ab=0) | torch | fp32 |" in paths["md"].read_text()
    assert lpips_gate(rows, 1.0) == []
    failing = lpips_gate(rows, 0.0)
    assert len(failing) == 2 and all("tiny" in f for f in failing)  # the gray floor is never gated


def test_cli_bench_and_gate_exit_code(setup):
    root, data, ckpt = setup
    args = [
        "bench",
        "--models",
        f"gray,{ckpt}",
        "--runtimes",
        "torch",
        "--data",
        str(data),
        "--out",
        str(root / "cli"),
        "--size",
        "64",
        "--time-size",
        "32x32",
        "--repeats",
        "2",
        "--throughput-batch",
        "2",
    ]
    ok = CliRunner().invoke(main, args + ["--fail-above-lpips", "1.0"])
    assert ok.exit_code == 0, ok.output
    assert "### Quality: paper protocol" in ok.output and (root / "cli" / "pareto.png").exists()
    gated = CliRunner().invoke(main, args + ["--fail-above-lpips", "0.0"])
    assert gated.exit_code == 1 and "LPIPS gate: tiny/torch/fp32" in gated.output
    bad = CliRunner().invoke(main, args[:-6] + ["--time-size", "big"])
    assert bad.exit_code != 0 and "HxW" in bad.output


def test_weightless_architecture_is_refused(setup):
    root, data, _ = setup
    with pytest.raises(ValueError, match="without weights"):
        run_bench(BenchConfig(models=("unet_s",), data=str(data), out=str(root / "x")), log=lambda *_: None)


def test_peer_rows_are_speed_only(setup, monkeypatch):
    import torch

    import benchmarks.bench as bench

    root, data, _ = setup
    tiny_peer = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1))  # stands in for the 32M-param eccv16
    monkeypatch.setattr(bench, "create_model", lambda name: tiny_peer)
    cfg = tiny_bench(root, "peer", ("eccv16",))
    (row,), _ = run_bench(cfg, log=lambda *_: None)
    assert row.note == "architecture only, speed only" and row.quality == {} and row.p50_ms > 0
    assert not np.isnan(row.img_per_s)


def test_a_failing_export_becomes_a_row_not_a_crash(setup, monkeypatch):
    import benchmarks.bench as bench

    root, data, ckpt = setup
    real = bench.make_runner

    def flaky(spec, runtime, precision, cfg, calibration=None):
        if runtime == "onnxruntime":
            raise RuntimeError("parity check failed (test)")
        return real(spec, runtime, precision, cfg, calibration)

    monkeypatch.setattr(bench, "make_runner", flaky)
    cfg = tiny_bench(root, "flaky", (str(ckpt),), ("torch", "onnxruntime"))
    rows, _ = run_bench(cfg, log=lambda *_: None)
    assert rows[1].note.startswith("not run: parity check failed") and rows[1].quality == {}
    paths = write_outputs(rows, cfg, 2)
    assert "not run: parity check failed" in paths["md"].read_text()


def test_a_runner_that_fails_inside_becomes_a_row(setup, monkeypatch):
    import benchmarks.bench as bench

    root, data, ckpt = setup
    real = bench.make_runner

    def breaking(spec, runtime, precision, cfg, calibration=None):
        runner, size = real(spec, runtime, precision, cfg, calibration)
        if runtime == "onnxruntime":  # exported and checked; then the device fails at inference
            runner.infer = lambda feeds: (_ for _ in ()).throw(RuntimeError("device lost (test)"))
        return runner, size

    monkeypatch.setattr(bench, "make_runner", breaking)
    cfg = tiny_bench(root, "broken", (str(ckpt),), ("torch", "onnxruntime"), max_images=1)
    rows, _ = run_bench(cfg, log=lambda *_: None)
    assert [r.runtime for r in rows] == ["torch", "onnxruntime"]
    assert rows[0].p50_ms > 0 and rows[1].note == "failed: device lost (test)" and np.isnan(rows[1].p50_ms)


def test_rows_for_every_runtime_and_precision_and_json_without_nan(setup):
    root, data, ckpt = setup
    cfg = tiny_bench(root, "grid", (str(ckpt),), ("torch", "tensorrt"), precisions=("fp32", "fp16"), max_images=1)
    told = []
    rows, n = run_bench(cfg, log=lambda *_: None, progress=lambda *args: told.append(args))
    # the bar: cases done out of all four, and what the running case does
    assert {total for _, _, total in told} == {4} and told[-1] == ("done", 4, 4)
    assert [done for _, done, _ in told] == sorted(done for _, done, _ in told)
    said = [what for what, done, _ in told if done == 0]
    assert said == [
        "tiny / torch / fp32: load",
        "tiny / torch / fp32: paper protocol, photo 1/1",
        "tiny / torch / fp32: paper protocol, scoring",
        "tiny / torch / fp32: deploy protocol, photo 1/1",
        "tiny / torch / fp32: deploy protocol, scoring",
        "tiny / torch / fp32: timing",
    ]
    assert [(r.runtime, r.precision) for r in rows] == [
        ("torch", "fp32"),
        ("torch", "fp16"),
        ("tensorrt", "fp32"),
        ("tensorrt", "fp16"),
    ]
    assert rows[0].p50_ms > 0 and rows[1].note.startswith("not run: torch runs fp32 only")
    assert all(r.note.startswith("not run:") for r in rows[2:])  # no GPU, or no tensorrt, here
    text = write_outputs(rows, cfg, n)["json"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    document = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert document["rows"][1]["p50_ms"] is None and document["rows"][0]["p50_ms"] > 0


@pytest.mark.slow
def test_onnxruntime_and_openvino_rows_in_fp32_and_fp16_with_parity(setup):
    pytest.importorskip("openvino")
    root, data, ckpt = setup
    cfg = tiny_bench(root, "all", (str(ckpt),), ("torch", "onnxruntime", "openvino"), precisions=("fp32", "fp16"))
    rows, n = run_bench(cfg, log=lambda *_: None)
    table = {(r.runtime, r.precision): r for r in rows}
    for key in (("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("openvino", "fp32"), ("openvino", "fp16")):
        row = table[key]
        assert row.parity_ok and row.parity_max <= 8 and row.p50_ms > 0 and row.threads, key
        assert row.quality["paper"]["lpips"] > 0 and row.size_mb > 0
    assert table["onnxruntime", "fp32"].parity_max <= 2 and table["openvino", "fp32"].parity_max <= 2


def test_cli_refuses_an_unusable_out_before_the_run(setup, monkeypatch):
    import benchmarks.bench as bench

    root, data, _ = setup
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: pytest.fail("the run started"))
    afile = root / "afile"
    afile.write_text("x")
    cases = (
        (afile, "the output folder is a file"),
        (afile / "x", "cannot create the output folder"),
        (data / "results", "is inside --data"),  # its charts would be scored as photos next time
    )
    for out, why in cases:
        result = CliRunner().invoke(main, ["bench", "--models", "gray", "--data", str(data), "--out", str(out)])
        assert result.exit_code == 1 and result.stderr.startswith(f"Error: {out}: "), result.output
        assert why in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert afile.read_text() == "x" and not (data / "results").exists()


def test_a_run_stopped_or_failed_before_its_results_leaves_no_empty_folders(setup, monkeypatch):
    import signal

    import benchmarks.bench as bench
    from edge_colorizer.stopping import record_stop

    root, data, _ = setup

    def stopped_converting(cfg, **kwargs):
        (Path(cfg.out) / "artifacts").mkdir()
        raise record_stop(signal.SIGINT)  # what Ctrl-C raises under the command's handler

    monkeypatch.setattr(bench, "run_bench", stopped_converting)
    out = root / "new" / "stopped"
    result = CliRunner().invoke(main, ["bench", "--models", "gray", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 130 and "stopped by SIGINT" in result.stderr and not (root / "new").exists()
    monkeypatch.setattr(bench, "run_bench", lambda cfg, **k: (_ for _ in ()).throw(ValueError("nope: bad model")))
    result = CliRunner().invoke(main, ["bench", "--models", "gray", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 1 and "nope: bad model" in result.stderr and not (root / "new").exists()


def test_cli_rejects_unknown_runtimes_precisions_and_missing_calibration(setup):
    root, data, ckpt = setup
    base = ["bench", "--models", str(ckpt), "--data", str(data), "--out", str(root / "cli-bad")]
    foo = CliRunner().invoke(main, base + ["--runtimes", "torch,foo"])
    assert foo.exit_code == 2 and "unknown runtime 'foo'" in foo.output and "onnxruntime" in foo.output
    int4 = CliRunner().invoke(main, base + ["--precisions", "fp32,int4"])
    assert int4.exit_code == 2 and "unknown precision 'int4'" in int4.output
    int8 = CliRunner().invoke(main, base + ["--runtimes", "onnxruntime", "--precisions", "int8"])
    assert int8.exit_code == 2 and "--calibration" in int8.output
    zero = CliRunner().invoke(main, base + ["--time-size", "0x0"])
    assert zero.exit_code == 2 and "HxW" in zero.output
    assert not (root / "cli-bad").exists()


def test_an_exported_artifact_is_one_row_in_its_own_runtime(setup):
    from edge_colorizer.checkpoint import load_model
    from edge_colorizer.colorizer import ColorizerModule
    from runtimes.onnx import export

    root, data, ckpt = setup
    artifact = root / "tiny_fp16.onnx"
    export(ColorizerModule(load_model(ckpt), size=32), artifact, precision="fp16", force=True)
    rows, _ = run_bench(tiny_bench(root, "artifact", (str(artifact),), ("torch",)), log=lambda *_: None)
    assert [(r.model, r.runtime, r.precision) for r in rows] == [("tiny_fp16", "onnxruntime", "fp16")]
    assert rows[0].quality["paper"]["lpips"] > 0 and rows[0].p50_ms > 0 and "onnx artifact" in rows[0].note
    assert rows[0].net_size == 32  # what the artifact says it was exported at


def test_each_checkpoint_runs_at_its_stored_size_unless_size_is_given(setup, monkeypatch):
    import benchmarks.bench as bench
    from edge_colorizer.colorizer import ColorizerModule

    root, data, _ = setup
    stored = root / "stored48.pt"
    save_model(create_model("unet_s", width=8).eval(), stored, input_size=48)
    plain = root / "plain.pt"
    save_model(create_model("unet_s", width=8).eval(), plain)
    sizes = []
    real = ColorizerModule.__init__

    def spy(self, net, size=256, *a, **kw):
        sizes.append(size)
        real(self, net, size, *a, **kw)

    monkeypatch.setattr(ColorizerModule, "__init__", spy)
    own = tiny_bench(root, "own", ("gray", str(stored), str(plain)), size=0)
    rows, _ = run_bench(own, log=lambda *_: None)
    assert [r.net_size for r in rows] == [0, 48, 256] and 48 in sizes and 256 in sizes
    md = bench.markdown(rows, own, 2)
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[6] for line in md.splitlines() if "| torch |" in line}
    assert cells == {"gray (ab=0)": "–", "stored48": "48", "plain": "256"}
    assert rows[1].gmacs == pytest.approx(count_macs(create_model("unet_s", width=8), 48) / 1e9)
    sizes.clear()
    forced, _ = run_bench(tiny_bench(root, "forced", (str(stored), str(plain)), size=32), log=lambda *_: None)
    assert [r.net_size for r in forced] == [32, 32] and set(sizes) == {32}


def test_pareto_front_keeps_rows_no_faster_row_beats():
    points = [(10.0, 0.30), (5.0, 0.33), (20.0, 0.29), (30.0, 0.295), (40.0, 0.2895), (60.0, 0.27)]
    assert pareto_front(points) == [1, 0, 2, 4, 5]
    # within the tolerance a slower row is not a step of the front (same network, another runtime)
    assert pareto_front(points, tol=0.002) == [1, 0, 2, 5]
    assert pareto_front([]) == []


def test_photos_that_cannot_serve_as_truth_are_skipped_with_a_line(setup, tmp_path):
    root, data, _ = setup
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in data.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(mixed / "gray.png")
    lines = []
    cfg = BenchConfig(models=("gray",), runtimes=("torch",), data=str(mixed), out=str(tmp_path / "o"), repeats=2)
    from benchmarks.bench import load_eval_images

    images = load_eval_images(cfg, lines.append)
    assert len(images) == 2 and len(lines) == 2
    assert any(line.startswith(f"skip {mixed / 'empty.jpg'}: ") for line in lines)
    assert f"skip {mixed / 'gray.png'}: a gray photo (R = G = B), no colour to score a colorizer against" in lines
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no images to benchmark on"):
        load_eval_images(BenchConfig(data=str(only_bad)), lines.append)
