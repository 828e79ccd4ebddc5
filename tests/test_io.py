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
