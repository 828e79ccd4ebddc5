import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_colorizer.io import find_images, read_image, write_image


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def test_find_images_files_folders_globs(tmp_path, rgb):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in ("a/x.png", "a/b/y.JPG", "a/b/notes.txt", "z.webp"):
        Image.fromarray(rgb).save(tmp_path / p, format="PNG" if p.endswith(("png", "txt", "webp")) else "JPEG")
    assert [p.name for p in find_images([str(tmp_path / "a")])] == ["y.JPG", "x.png"]  # sorted by path
    assert [p.name for p in find_images([str(tmp_path / "*.webp")])] == ["z.webp"]
    both = find_images([str(tmp_path / "a" / "x.png"), str(tmp_path / "a")])
    assert len(both) == 2  # de-duplicated
    with pytest.raises(FileNotFoundError, match="missing.png"):
        find_images([str(tmp_path / "missing.png")])


@pytest.mark.parametrize(
    "fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("TIFF", ".tif")]
)
def test_formats_round_trip(tmp_path, rgb, fmt, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    img = read_image(path)
    assert img.rgb.shape == rgb.shape and img.rgb.dtype == np.uint8
    if fmt != "JPEG":
        assert np.array_equal(img.rgb, rgb)


def test_gray_becomes_three_equal_channels(tmp_path):
    g = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.source_mode == "L" and np.array_equal(img.rgb[..., 0], g) and np.array_equal(img.rgb[..., 2], g)


def test_sixteen_bit_is_scaled(tmp_path):
    g16 = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 655).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.source_mode.startswith("I")
    assert img.rgb[..., 0].max() >= 250 and np.allclose(img.rgb[..., 0], np.round(g16 / 65535 * 255), atol=1)


def test_rgba_keeps_alpha_and_palette_and_cmyk(tmp_path, rgb):
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert np.array_equal(img.alpha, alpha) and np.array_equal(img.rgb, rgb)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").rgb.shape == rgb.shape
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    c = read_image(tmp_path / "c.jpg")
    assert c.source_mode == "CMYK" and c.rgb.shape == rgb.shape


def test_exif_orientation_is_applied(tmp_path, rgb):
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "o.jpg", exif=exif)
    assert read_image(tmp_path / "o.jpg").rgb.shape == (30, 20, 3)


def test_bad_files_give_one_line_errors(tmp_path, rgb):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    Image.fromarray(rgb).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    for name, reason in [("empty.png", "empty"), ("text.png", "not an image"), ("trunc.png", "cannot decode")]:
        with pytest.raises(ValueError, match=reason) as info:
            read_image(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)


def test_write_is_atomic_and_keeps_alpha(tmp_path, rgb):
    alpha = np.full(rgb.shape[:2], 7, np.uint8)
    write_image(tmp_path / "o.png", rgb, alpha)
    back = np.asarray(Image.open(tmp_path / "o.png"))
    assert back.shape == (20, 30, 4) and (back[..., 3] == 7).all()
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]
    with pytest.raises(ValueError, match="unsupported output format"):
        write_image(tmp_path / "o.gif", rgb)


def test_written_files_get_ordinary_permissions(tmp_path, rgb):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_image(tmp_path / "o.png", rgb)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "o.png").stat().st_mode) == 0o644


# ---- hardening (issue 11) ------------------------------------------------------------------------


def test_names_are_shown_escaped():
    from edge_colorizer.io import shown

    assert shown("a\x1b[31mb\nc\td") == "a\\x1b[31mb\\nc\\td"
    assert shown(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"  # not UTF-8
    assert shown("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # a bidi override
    assert shown("café [1].png") == "café [1].png"


def test_temporary_names_are_recognisable_and_short(tmp_path):
    from edge_colorizer.io import is_temporary, temporary_name

    for name in ("x.png", "n" * 251 + ".png", "é" * 120 + ".png"):
        tmp = temporary_name(tmp_path / name)
        assert len(os.fsencode(tmp)) <= 255 and tmp.startswith(".") and tmp.endswith(".tmp")
        assert is_temporary(tmp) and f"edge-colorizer-{os.getpid()}-" in tmp
    assert not is_temporary("x.png") and not is_temporary(".x.png.abc123.tmp")


def test_atomic_write_leaves_nothing_on_any_exception(tmp_path):
    from edge_colorizer.io import atomic_write

    (tmp_path / "keep.bin").write_bytes(b"old")
    for exc in (RuntimeError("disk"), KeyboardInterrupt(), SystemExit(143)):
        with pytest.raises(type(exc)):
            with atomic_write(tmp_path / "keep.bin") as f:
                f.write(b"half")
                raise exc
    assert os.listdir(tmp_path) == ["keep.bin"] and (tmp_path / "keep.bin").read_bytes() == b"old"


def test_new_folders_left_empty_by_a_failure_are_removed_and_no_others(tmp_path):
    from edge_colorizer.io import new_folders_dropped_on_failure

    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(KeyboardInterrupt), new_folders_dropped_on_failure(out, "artifacts"):
        (out / "artifacts").mkdir(parents=True)
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == []  # out, its parents made for it and its subfolder
    with pytest.raises(ValueError), new_folders_dropped_on_failure(out, "artifacts"):
        (out / "artifacts").mkdir(parents=True)
        (out / "artifacts" / "model.onnx").write_bytes(b"x")  # finished work stays, with its folders
        raise ValueError
    assert (out / "artifacts" / "model.onnx").exists()
    (out / "artifacts" / "model.onnx").unlink()
    with pytest.raises(SystemExit), new_folders_dropped_on_failure(out, "artifacts"):
        raise SystemExit(130)
    assert (out / "artifacts").is_dir()  # folders that were there before stay, empty or not
    with new_folders_dropped_on_failure(tmp_path / "ok"):
        (tmp_path / "ok").mkdir()
    assert (tmp_path / "ok").is_dir()  # a block that ends normally keeps what it made


def test_stale_temporaries_are_swept_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from edge_colorizer.io import sweep_temporaries, write_image

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    (tmp_path / "d").mkdir()
    stale = tmp_path / "d" / f".a.png.edge-colorizer-{dead}-00ff.tmp"
    live = tmp_path / f".b.png.edge-colorizer-{os.getpid()}-00ff.tmp"
    other = tmp_path / ".notes.tmp"  # not ours: never touched
    for p in (stale, live, other):
        p.write_bytes(b"x")
    assert sweep_temporaries(tmp_path) == [stale]
    assert live.exists() and other.exists()
    # the per-target sweep of a single write (checkpoints) also removes the names older versions wrote
    (tmp_path / ".c.png.k2j4_x9q.tmp").write_bytes(b"x")
    write_image(tmp_path / "c.png", np.zeros((2, 2, 3), np.uint8))
    assert not (tmp_path / ".c.png.k2j4_x9q.tmp").exists()


def test_scan_reports_what_yields_nothing_and_skips_hidden_and_output(tmp_path, rgb):
    from edge_colorizer.io import scan_inputs

    (tmp_path / "in" / "out").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for p in ("in/a.png", "in/._a.png", "in/.b.png", "in/out/c.png", "in/notes.txt"):
        Image.fromarray(rgb).save(tmp_path / p, format="PNG")
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)
    (tmp_path / "in" / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    scan = scan_inputs(
        [
            tmp_path / "in",
            tmp_path / "empty",
            tmp_path / "nope.png",
            str(tmp_path / "z*.png"),
            tmp_path / "in/notes.txt",
        ],
        exclude=[tmp_path / "in" / "out"],
    )
    assert [f.path.relative_to(tmp_path).as_posix() for f in scan.images] == ["in/a.png"]
    assert [(p.kind, p.reason.split(" (")[0]) for p in scan.problems] == [
        ("unreadable", "broken link"),
        ("empty", "no images in this folder"),
        ("missing", "no such file or folder"),
        ("missing", "no file matches this pattern"),
        ("unsupported", "unsupported file type .txt"),
    ]
    with pytest.raises(FileNotFoundError):
        find_images([tmp_path / "nope.png"])
    assert find_images([tmp_path / "empty"]) == []


def test_a_link_loop_named_and_inside_a_folder_given_is_reported_once(tmp_path):
    from edge_colorizer.io import scan_inputs

    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    scan = scan_inputs([tmp_path / "a.png", tmp_path])
    assert [(Path(p.path).name, p.reason.split(" (")[0]) for p in scan.problems] == [
        ("a.png", "cannot access"),  # named: said once, not again when its folder is scanned
        ("b.png", "cannot read"),
    ]
    assert scan.images == []


def test_float_images_range_is_read_from_the_data(tmp_path):
    for top, scale in ((1.0, 255.0), (255.0, 1.0), (65535.0, 255.0 / 65535.0)):
        f = (np.linspace(0, top, 100, dtype=np.float32)).reshape(10, 10)
        f[0, 0] = np.nan  # NaN becomes black, not undefined
        Image.fromarray(f, "F").save(tmp_path / "f.tif")
        got = read_image(tmp_path / "f.tif").rgb[..., 0].astype(float)
        want = np.clip(np.round(np.nan_to_num(f) * scale), 0, 255)
        assert np.abs(got - want).max() <= 1 and got[0, 0] == 0
    Image.fromarray(np.full((4, 4), 1e6, np.float32), "F").save(tmp_path / "huge.tif")
    with pytest.raises(ValueError, match="floating-point pixels up to 1e"):
        read_image(tmp_path / "huge.tif")


def test_pixel_limit_is_checked_before_decoding_without_pillow_warnings(tmp_path):
    import warnings

    from tests.hostile.corpus import big_gray_png

    big_gray_png(tmp_path / "big.png", 10000, 10000, valid=False)  # the header says 100 megapixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"too large \(10000x10000 = 100.0 megapixels; the limit is 50 megapixels"):
            read_image(tmp_path / "big.png")
        with pytest.raises(ValueError, match="cannot decode"):  # past the limit, the decoder meets the bad data
            read_image(tmp_path / "big.png", max_pixels=10**9)


def test_random_exif_corruptions_never_escape_as_anything_but_one_line(tmp_path, rgb):
    import random

    exif = Image.Exif()
    exif.update({0x0112: 6, 0x011A: 72.0, 0x011B: 72.0, 0x0128: 2, 0x0131: "x", 0x0132: "2020:01:01 00:00:00"})
    raw = exif.tobytes()
    rng = random.Random(0)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(300):
        mutated = bytearray(raw)
        for _ in range(2):
            mutated[rng.randrange(8, len(mutated))] = rng.randrange(256)
        path = tmp_path / f"{i}.jpg"
        try:
            Image.fromarray(rgb).save(path, "JPEG", exif=bytes(mutated))
        except Exception:
            continue  # Pillow would not even write it
        try:
            img = read_image(path)
            assert img.rgb.shape in ((20, 30, 3), (30, 20, 3))
            outcomes["ok"] += 1
        except ValueError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["ok"] > 200


def test_orientation_matches_pillow_for_all_eight(tmp_path, rgb):
    from PIL import ImageOps

    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(rgb).save(tmp_path / "o.png", exif=exif)
        with Image.open(tmp_path / "o.png") as im:
            expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        assert np.array_equal(read_image(tmp_path / "o.png").rgb, expected), orientation


def test_check_writable_file(tmp_path):
    from edge_colorizer.io import check_writable_file

    (tmp_path / "f").write_text("x")
    check_writable_file(tmp_path / "new" / "deeper" / "r.json")  # missing folders are created later
    for path, words in [(tmp_path / "f" / "r.json", "is not a folder"), (tmp_path, "is a folder")]:
        with pytest.raises(ValueError, match=words):
            check_writable_file(path)
    with pytest.raises(ValueError, match="unsupported output format"):
        check_writable_file(tmp_path / "g.gif", (".png",))


def test_colorize_files_takes_any_array_function_and_refuses_gif_before_colorizing(tmp_path, rgb):
    from edge_colorizer.inference import colorize_files

    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.gif")
    seen = []

    def swap_channels(x):  # what an ONNX or INT8 runner would be wrapped as
        seen.append(x.shape)
        return np.ascontiguousarray(x[..., ::-1])

    errors = []
    report = colorize_files(
        [tmp_path / "a.png", tmp_path / "b.gif"], tmp_path / "o", swap_channels, on_error=errors.append
    )
    assert seen == [(20, 30, 3)] and len(report.written) == 1 and len(errors) == 1 and "b.gif: unsupported" in errors[0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), rgb[..., ::-1])
