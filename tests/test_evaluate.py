import pytest
from PIL import Image

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline
from edge_colorizer.evaluate import evaluate, time_colorizer
from edge_colorizer.models import create_model


@pytest.fixture
def folder(tmp_path, real_photos):
    for name, img in real_photos.items():
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    return tmp_path


def test_gray_row_is_the_floor_and_identity_would_be_perfect(folder, real_photos):
    net = create_model("unet_s", width=8).eval()
    totals, done = [], []
    rows = evaluate(
        {"tiny": ColorizerModule(net, size=64)}, folder, max_side=128, on_total=totals.append, progress=done.append
    )
    assert totals == [3] and len(done) == 3  # the bar's total is known before the first photo
    results = {r.name: r for r in rows}
    gray = results["gray (ab = 0)"]
    assert gray.images == 3 and gray.colorfulness < 1.0 and gray.colorfulness_ratio < 0.05
    assert 15 < gray.psnr_db < 40
    assert results["tiny"].colorfulness_truth == gray.colorfulness_truth > 10


def test_timing_reports_percentiles():
    colorizer = ColorizerModule(create_model("unet_s", width=8).eval(), size=32)
    t = time_colorizer(colorizer, 40, 50, repeats=5, warmup=1)
    assert 0 < t["p50_ms"] <= t["p95_ms"] and t["height"] == 40 and t["threads"] >= 1


@pytest.mark.slow  # LPIPS at full resolution on three photos
def test_lpips_column_is_the_mean_distance_to_the_truth(folder, real_photos):
    from edge_colorizer.inference import colorize_array
    from edge_colorizer.metrics.lpips import LPIPS, to_lpips_input

    lpips = LPIPS("alex")
    net = create_model("unet_s", width=8).eval()
    results = {r.name: r for r in evaluate({"tiny": ColorizerModule(net, size=64)}, folder, max_side=None, lpips=lpips)}
    gray = ColorizerModule(GrayBaseline(), size=64).eval()
    expected = [
        float(lpips(to_lpips_input(colorize_array(gray, img)), to_lpips_input(img))) for img in real_photos.values()
    ]
    assert results["gray (ab = 0)"].lpips == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert 0.0 < results["tiny"].lpips < 1.0
    assert evaluate({}, folder, max_side=64)[0].lpips is None  # not asked for


def test_results_json_is_strict_and_skips_are_reported(folder, tmp_path):
    import json

    from edge_colorizer.evaluate import EvalResult, results_json

    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    skipped = []
    net = create_model("unet_s", width=8).eval()
    results = evaluate({"tiny": ColorizerModule(net, size=32)}, folder, max_side=64, on_skip=skipped.append)
    assert [r.images for r in results] == [3, 3] and len(skipped) == 1 and "broken.png: not an image" in skipped[0]
    odd = EvalResult("x", 1, float("inf"), 0.0, 0.0, float("nan"), None)
    doc = json.loads(results_json([odd], {}, skipped), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert doc["quality"][0]["psnr_db"] is None and doc["quality"][0]["colorfulness_ratio"] is None
    assert doc["skipped"] == skipped


def test_a_view_scores_what_each_photo_becomes(folder, tmp_path_factory, real_photos):
    """``view=paper_view`` scores the 256x256 bicubic resize of each read photo: the same numbers as a
    folder of those resized photos, and not the numbers of the photos as they are."""
    from edge_colorizer.evaluate import PAPER_SIZE, paper_view
    from edge_colorizer.io import fit_long_side

    resized = tmp_path_factory.mktemp("resized")  # not inside ``folder``: it is scanned recursively
    for name, img in real_photos.items():
        view = paper_view(fit_long_side(img, 128))
        assert view.shape == (PAPER_SIZE, PAPER_SIZE, 3)
        Image.fromarray(view).save(resized / f"{name}.png")
    net = ColorizerModule(create_model("unet_s", width=8).eval(), size=64)
    viewed = evaluate({"tiny": net}, folder, max_side=128, view=paper_view)
    expected = evaluate({"tiny": net}, resized, max_side=None)
    as_is = evaluate({"tiny": net}, folder, max_side=128)
    for a, b in zip(viewed, expected, strict=True):
        assert a.psnr_db == pytest.approx(b.psnr_db, abs=1e-9) and a.colorfulness == pytest.approx(b.colorfulness)
    assert abs(viewed[1].psnr_db - as_is[1].psnr_db) > 1e-3
