import io
import json

import numpy as np
import pytest
from PIL import Image

from edge_colorizer.data import sources
from edge_colorizer.data.sources import difference_hash, photo_rejection, prepare, read_jigzo_puzzle
from tests.data.rcc_writer import write_rcc


def encode(arr, fmt="WEBP", mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format=fmt)
    return buf.getvalue()


def drawing(h=300, w=300):
    img = np.zeros((h, w, 4), np.uint8)
    img[50:250, 50:250] = (200, 40, 40, 255)  # flat red square on a transparent background
    return img


def jigzo_puzzle(picture):
    """A .pzl laid out like jigzo's: header, thumbnail, alpha atlas, then the atlas holding the picture."""
    h, w = picture.shape[:2]
    atlas = np.zeros((h + 40, w + 30, 3), np.uint8)
    atlas[40:, 30:] = picture
    header = f"PzlF\n0.1\ncat-3x3\nhttp://x/\ncat.map\n100\ncrop000 0 0 10 10\nimage 30 40 {w} {h} 1 1\n"
    thumb = encode(picture[::4, ::4], "JPEG")
    alpha = encode(np.zeros((64, 64, 4), np.uint8), "PNG", "RGBA")
    return header.encode() + thumb + alpha + encode(atlas, "PNG")


@pytest.fixture
def fake_cache(tmp_path, real_photos):
    """A package cache laid out like unpacked .debs, so prepare() needs no apt-get."""
    cache = tmp_path / "cache"
    cat, coffee, astro = real_photos["chelsea"], real_photos["coffee"], real_photos["astronaut"]

    def pkg(name, files):
        root = cache / "pkgs" / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, payload in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(payload)
        (root / ".complete").touch()

    bundle = write_rcc(
        {
            "gcompris/src/activities/farm/resource/cat.webp": encode(cat),
            "gcompris/src/activities/farm/resource/cat_copy.webp": encode(cat),  # exact duplicate
            "gcompris/src/activities/farm/resource/coffee.webp": encode(coffee),
            "gcompris/src/activities/farm/resource/drawing.webp": encode(drawing(), mode="RGBA"),
            "gcompris/src/activities/farm/resource/gray.webp": encode(np.asarray(Image.fromarray(coffee).convert("L"))),
            "gcompris/src/activities/farm/resource/tiny.webp": encode(cat[:100, :100]),
            "gcompris/src/activities/farm/resource/astro.webp": encode(astro[::2, ::2]),  # also in eval
        },
        compress={"gcompris/src/activities/farm/resource/coffee.webp"},
    )
    art = write_rcc({"p/painting.webp": encode(coffee[::-1])})
    details = write_rcc(
        {
            "d/image/TajMahal_background.webp": encode(astro[::-1, ::-1]),  # a photograph: kept
            "d/image/Gogh4_background.webp": encode(cat[::-1, ::-1]),  # a painting: skipped
        }
    )
    pkg(
        "gcompris-qt-data",
        {
            "usr/share/gcompris-qt/rcc/farm.rcc": bundle,
            "usr/share/gcompris-qt/rcc/paintings.rcc": art,
            "usr/share/gcompris-qt/rcc/details.rcc": details,
        },
    )
    # kphotoalbum's demo album stores a turned scan and says so in index.xml
    turned = np.ascontiguousarray(np.rot90(coffee[:, :300]))  # counter-clockwise: needs 90 clockwise
    pkg(
        "kphotoalbum",
        {
            "usr/share/kphotoalbum/demo/index.xml": b'<images><image file="scan.png" angle="90"/></images>',
            "usr/share/kphotoalbum/demo/scan.png": encode(turned, "PNG"),
        },
    )
    pkg("jigzo-data", {"usr/share/games/jigzo/puzzles/00_default/cat-3x3.pzl": jigzo_puzzle(cat)})
    pkg(
        "mate-backgrounds",
        {
            "usr/share/backgrounds/mate/nature/Astro.jpg": encode(astro, "JPEG"),
            "usr/share/backgrounds/mate/abstract/Cat.jpg": encode(cat[:, ::-1], "JPEG"),
        },
    )
    pkg(
        "plasma-workspace-wallpapers",
        {
            "usr/share/wallpapers/Path/contents/images/640x480.jpg": encode(coffee[:, ::-1][::2, ::2], "JPEG"),
            "usr/share/wallpapers/Path/contents/images/1280x960.jpg": encode(coffee[:, ::-1], "JPEG"),
            "usr/share/wallpapers/Kay/contents/images/1280x960.jpg": encode(cat[::-1], "JPEG"),
        },
    )
    pkg("lomiri-wallpapers-16.04", {"usr/share/backgrounds/umang_by_X.jpg": encode(cat[::-1, ::-1], "JPEG")})
    pkg("lomiri-wallpapers-20.04", {})
    # Tux Paint's stamps: a curated photo (kept, twice: the copy is dropped), an uncurated drawing, an
    # opaque curated one (not a cut-out)
    stamps = "usr/share/tuxpaint/stamps/"
    pkg(
        "tuxpaint-stamps-default",
        {
            stamps + "animals/birds/crow.png": encode(cutout(cat), "PNG", "RGBA"),
            stamps + "animals/birds/duck.png": encode(cutout(cat), "PNG", "RGBA"),
            stamps + "animals/mammals/cartoon/mouse.png": encode(drawing(), "PNG", "RGBA"),
            stamps + "food/fruit/kiwi.png": encode(coffee, "PNG"),
        },
    )
    return cache


def cutout(photo):
    """A photo's centre disc on a transparent background."""
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2, 255, 0).astype(np.uint8)
    return np.dstack([photo, alpha])


TRAIN = ("gcompris-qt-data", "kphotoalbum", "jigzo-data")


def test_prepare_builds_disjoint_splits_and_manifest(tmp_path, fake_cache, monkeypatch):
    monkeypatch.setattr(sources, "VAL_EVERY", 10**9)  # no validation split here: see the test below
    out = tmp_path / "pools"
    logs, begun = [], []
    entries = prepare(
        out, cache=fake_cache, log=logs.append, train_packages=TRAIN, on_package=lambda *a: begun.append(a)
    )
    total = len(sources.EVAL_PACKAGES) + len(TRAIN) + len(sources.CUTOUT_PACKAGES)
    assert begun == [(p, total) for p in (*sources.EVAL_PACKAGES, *TRAIN, *sources.CUTOUT_PACKAGES)]  # the bar
    train = sorted(e.source_path.split("/")[-1] for e in entries if e.split == "train")
    evals = sorted(
        e.source_path.split("/")[-4] if "wallpapers" in e.source_path else e.source_path.split("/")[-1]
        for e in entries
        if e.split == "eval"
    )
    # no duplicate, drawing, gray, tiny, painting (bundle or named), or eval picture; the puzzle's cat
    # is the farm cat again, so it is a duplicate
    assert train == ["TajMahal_background.webp", "cat.webp", "coffee.webp", "scan.png"]
    assert evals == ["Astro.jpg", "Path"]  # nature only, photo wallpapers only, largest resolution
    assert any("same picture already in the eval split" in line for line in logs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len([row for row in manifest["images"] if row["split"] != "cutouts"]) == 6
    for row in manifest["images"]:
        assert set(row) >= {"file", "split", "package", "source_path", "sha256", "width", "height"}
        assert (out / row["file"]).exists()
    path_entry = next(e for e in entries if "Path" in e.source_path)
    assert "1280x960" in path_entry.source_path


def test_prepare_writes_the_curated_cutouts(tmp_path, fake_cache, monkeypatch):
    monkeypatch.setattr(sources, "VAL_EVERY", 10**9)
    out = tmp_path / "pools"
    logs = []
    entries = prepare(out, cache=fake_cache, log=logs.append, train_packages=TRAIN)
    cut = [e for e in entries if e.split == "cutouts"]
    # the curated photo once (its copy is the same pixels), not the drawing (not curated) nor the opaque one
    assert [e.source_path.rsplit("/", 1)[-1] for e in cut] == ["crow.png"]
    assert any("kiwi.png" in line and "no transparency" in line for line in logs)
    img = Image.open(out / cut[0].file)
    assert img.mode == "RGBA" and max(img.size) <= sources.CUTOUT_MAX_SIDE
    alpha = np.asarray(img)[..., 3]
    assert 0.2 < (alpha > 128).mean() < 0.5  # the disc, pi/9 of the square
    assert cut[0].package == "tuxpaint-stamps-default" and "cut-outs" in logs[-1]


def test_cutout_rejection_reasons():
    photo = np.full((100, 100, 3), 120, np.uint8)
    assert "transparency" in sources.cutout_rejection(Image.fromarray(photo))
    assert "small" in sources.cutout_rejection(Image.fromarray(cutout(photo[:40, :40]), "RGBA"))
    assert sources.cutout_rejection(Image.fromarray(cutout(photo), "RGBA")) is None


def test_photo_rejection_reasons(real_photos):
    assert photo_rejection(Image.fromarray(real_photos["chelsea"])) is None
    assert "cut-out" in photo_rejection(Image.fromarray(drawing(), "RGBA"))
    assert "grayscale" in photo_rejection(Image.fromarray(real_photos["coffee"]).convert("L").convert("RGB"))
    assert "small" in photo_rejection(Image.fromarray(real_photos["coffee"][:150, :150]))
    flat = np.zeros((300, 300, 3), np.uint8)
    flat[:, :150] = (255, 0, 0)
    flat[:, 150:] = (0, 0, 255)
    assert "flat" in photo_rejection(Image.fromarray(flat))


def test_difference_hash_matches_resized_copies(real_photos):
    img = Image.fromarray(real_photos["astronaut"])
    same = difference_hash(img) ^ difference_hash(img.resize((200, 200)))
    other = difference_hash(img) ^ difference_hash(Image.fromarray(real_photos["coffee"]))
    assert bin(same).count("1") <= 4 < bin(other).count("1")


@pytest.mark.network
def test_real_gcompris_pool_has_many_photos(gcompris_root, tmp_path):
    """End to end on the real package: only the training pool, to stay fast."""
    entries = prepare(
        tmp_path / "pool",
        cache=gcompris_root.parents[1],
        log=lambda *_: None,
        train_packages=("gcompris-qt-data",),
        eval_packages=(),
        cutout_packages=(),
    )
    assert len(entries) >= 200
    assert {e.package for e in entries} == {"gcompris-qt-data"}
    assert 0.04 < sum(e.split == "val" for e in entries) / len(entries) < 0.2


@pytest.mark.network
def test_real_extra_packages_add_photos(gcompris_root, tmp_path):
    """The eight other packages still hold the photographs named in sources.py (about 100)."""
    try:
        entries = prepare(
            tmp_path / "pool",
            cache=gcompris_root.parents[1],
            log=lambda *_: None,
            train_packages=sources.TRAIN_PACKAGES[1:],
            eval_packages=(),
            cutout_packages=(),
        )
    except RuntimeError as exc:
        pytest.skip(str(exc))
    counts = {p: sum(e.package == p for e in entries) for p in sources.TRAIN_PACKAGES[1:]}
    assert sum(counts.values()) >= 80, counts
    assert counts["kphotoalbum"] >= 20 and counts["jigzo-data"] >= 10 and counts["lxqt-themes"] >= 8, counts
    assert all(n >= 4 for n in counts.values()), counts


@pytest.mark.network
def test_real_stamps_give_the_curated_cutouts(gcompris_root, tmp_path):
    """Every curated stamp is still in the package and still a cut-out (about 260 with GCompris's hands)."""
    logs = []
    try:
        entries = prepare(
            tmp_path / "pool",
            cache=gcompris_root.parents[1],
            log=logs.append,
            train_packages=(),
            eval_packages=(),
        )
    except RuntimeError as exc:
        pytest.skip(str(exc))
    assert {e.split for e in entries} == {"cutouts"}
    assert len(entries) >= 250, logs
    found = {e.source_path.split("stamps/")[-1].rsplit(".", 1)[0] for e in entries}
    assert len(sources.STAMP_PHOTOS - found) <= 2, sorted(sources.STAMP_PHOTOS - found)


def test_prepare_turns_scans_upright_and_reads_puzzles(tmp_path, fake_cache, real_photos, monkeypatch):
    monkeypatch.setattr(sources, "VAL_EVERY", 10**9)
    entries = prepare(
        tmp_path / "p", cache=fake_cache, log=lambda *_: None, train_packages=("kphotoalbum", "jigzo-data")
    )
    by_name = {e.source_path.split("/")[-1]: e for e in entries}
    scan = np.asarray(Image.open(tmp_path / "p" / by_name["scan.png"].file))
    np.testing.assert_array_equal(scan, real_photos["coffee"][:, :300])  # turned back, lossless
    puzzle = np.asarray(Image.open(tmp_path / "p" / by_name["cat-3x3.pzl"].file))
    np.testing.assert_array_equal(puzzle, real_photos["chelsea"])  # cut from the last atlas


def test_read_jigzo_puzzle_rejects_other_files():
    with pytest.raises(ValueError, match="not a jigzo puzzle"):
        read_jigzo_puzzle(b"GIF89a" + b"\0" * 100)


def test_validation_split_is_stable_and_disjoint(tmp_path, fake_cache, monkeypatch):
    monkeypatch.setattr(sources, "VAL_EVERY", 2)
    first = prepare(tmp_path / "a", cache=fake_cache, log=lambda *_: None, train_packages=TRAIN)
    again = prepare(tmp_path / "b", cache=fake_cache, log=lambda *_: None, train_packages=TRAIN)
    assert [(e.source_path, e.split) for e in first] == [(e.source_path, e.split) for e in again]
    splits = {e.split for e in first}
    assert splits == {"train", "val", "eval", "cutouts"}  # with 1 in 2, both training splits get photos
    for e in first:
        assert (tmp_path / "a" / e.file).parent.name == e.split
    keys = [e.source_sha256 for e in first]
    assert len(keys) == len(set(keys))
