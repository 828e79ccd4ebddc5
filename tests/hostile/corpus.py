"""The hostile-input corpus of issue 11, generated at test time (nothing binary is committed).

Each builder writes files into a folder and returns what the CLI must do with them: the images it
must write, and for each bad file the words its one error line must contain.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms


@dataclass
class Corpus:
    root: Path
    good: dict[str, str] = field(default_factory=dict)  # input path (relative) -> output path (relative)
    bad: dict[str, str] = field(default_factory=dict)  # input path (relative) -> words of its error line
    ignored: list[str] = field(default_factory=list)  # files that are not inputs at all (no line, no output)


def photo(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A small colour test picture: smooth gradients plus noise, uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(h + w - 2, 1)], axis=-1)
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def tiff_exif(*entries: tuple[int, int, int, bytes]) -> bytes:
    """A raw little-endian EXIF block (``Exif\\0\\0`` + TIFF IFD0) with the given (tag, type, count, value)."""
    ifd = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, typ, count, value in sorted(entries):
        ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
    return b"Exif\x00\x00" + ifd + struct.pack("<I", 0)


ORIENTATION_6 = (0x0112, 3, 1, struct.pack("<H", 6))  # SHORT 6: turn 90 degrees clockwise to show


def jpeg_with_exif(path: Path, rgb: np.ndarray, exif: bytes) -> None:
    Image.fromarray(rgb).save(path, "JPEG", exif=exif)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def big_gray_png(path: Path, width: int, height: int, valid: bool = True) -> None:
    """A black 8-bit gray PNG of any size in little memory (rows streamed through zlib): ~1 KB per
    megapixel. With ``valid=False`` only the header is right (the pixel data is a few bytes)."""
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        if valid:
            z = zlib.compressobj(9)
            rows = bytes(width + 1) * 100  # 100 rows: filter byte 0 + black pixels
            data = b"".join(z.compress(rows) for _ in range(height // 100))
            data += z.compress(bytes(width + 1) * (height % 100)) + z.flush()
        else:
            data = zlib.compress(bytes(64))
        f.write(_png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))


def frames(fmt: str, path: Path, n: int = 3) -> None:
    images = [Image.fromarray(photo(seed=i)) for i in range(n)]
    images[0].save(path, fmt, save_all=True, append_images=images[1:])


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def build_colorize_corpus(root: Path) -> Corpus:
    """Every kind of input file ``colorize`` meets, good and bad, in one folder tree (``root/in``)."""
    src = root / "in"
    (src / "sub").mkdir(parents=True)
    c = Corpus(root)

    def good(name: str, out: str | None = None) -> Path:
        c.good[f"in/{name}"] = out or name
        return src / name

    rgb = photo()
    gray = rgb.mean(axis=2).astype(np.uint8)
    # the ordinary formats and modes
    Image.fromarray(gray, "L").save(good("gray.jpg"))
    Image.fromarray(rgb).save(good("rgb.png"))
    Image.fromarray(np.dstack([rgb, np.full(gray.shape, 90, np.uint8)]), "RGBA").save(good("sub/rgba.png"))
    Image.fromarray(rgb).convert("P").save(good("palette_trns.png"), transparency=0)
    Image.fromarray(gray.astype(np.uint16) * 257).save(good("gray16.png"))
    Image.fromarray(rgb).convert("CMYK").save(good("cmyk.jpg"))
    Image.fromarray(rgb).save(good("lossless.webp"), lossless=True)
    Image.fromarray(rgb).save(good("plain.bmp"))
    Image.fromarray(rgb).save(good("plain.tif"))
    # 1. malformed EXIF with an orientation: Pillow's exif_transpose raised TypeError / struct.error
    jpeg_with_exif(good("exif_typeerror.jpg"), rgb, tiff_exif(ORIENTATION_6, (0x011A, 2, 4, b"abc\x00")))
    jpeg_with_exif(good("exif_structerror.jpg"), rgb, tiff_exif(ORIENTATION_6, (0x0128, 2, 2, b"a\x00")))
    # 7. tRNS transparency in L, RGB and 16-bit PNGs (one colour is transparent)
    Image.fromarray(gray, "L").save(good("trns_gray.png"), transparency=int(gray[0, 0]))
    Image.fromarray(rgb).save(good("trns_rgb.png"), transparency=tuple(int(v) for v in rgb[0, 0]))
    Image.fromarray(gray.astype(np.uint16) * 257).save(good("trns_16.png"), transparency=int(gray[0, 0]) * 257)
    # rough edges: float TIFF in 0..255, ICC profile and DPI, a 249-byte name, a symlinked folder,
    # a file name with a newline
    Image.fromarray(gray.astype(np.float32), "F").save(good("float255.tif"))
    Image.fromarray(rgb).save(good("icc_dpi.png"), icc_profile=srgb_profile(), dpi=(300, 300))
    Image.fromarray(rgb).save(good("icc_dpi.jpg"), icc_profile=srgb_profile(), dpi=(300, 300))
    long_name = "n" * 245 + ".png"
    assert len(long_name.encode()) == 249
    Image.fromarray(rgb).save(good(long_name))
    Image.fromarray(rgb).save(good("new\nline.png"))
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    Image.fromarray(rgb).save(elsewhere / "linked.png")
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    c.good["in/linked/linked.png"] = "linked/linked.png"
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)  # a cycle: read once, never forever

    # bad files: one line each
    def bad(name: str, words: str, data: bytes | None = None) -> Path:
        c.bad[f"in/{name}"] = words
        if data is not None:
            (src / name).write_bytes(data)
        return src / name

    bad("empty.png", "empty file", b"")
    bad("text.jpg", "not an image", b"just some words, not a picture\n")
    full = io.BytesIO()
    Image.fromarray(photo(64, 64)).save(full, "PNG")
    bad("truncated.png", "cannot decode", full.getvalue()[: len(full.getvalue()) // 2])
    frames("WEBP", bad("animated.webp", "3 frames"))
    frames("PNG", bad("apng.png", "3 frames"))
    frames("TIFF", bad("pages.tif", "3 frames"))
    big_gray_png(bad("bomb.png", "too large (10000x10000 = 100.0 megapixels"), 10000, 10000, valid=False)
    bad("esc\x1b[31mred.png", "not an image", b"\x1b[2J not an image")
    bad(os.fsdecode(b"latin\xe9.png"), "not an image", b"garbage")
    # not inputs at all: hidden files, macOS resource forks, a temporary a killed run left here
    (src / "._rgb.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(74))  # AppleDouble header
    for name in (".hidden.png", ".rgb.png.edge-colorizer-999999999-abcd1234.tmp", "notes.txt"):
        Image.fromarray(rgb).save(src / name, "PNG")
    c.ignored += [f"in/{name}" for name in ("._rgb.png", ".hidden.png", "notes.txt")]
    c.ignored.append("in/.rgb.png.edge-colorizer-999999999-abcd1234.tmp")
    return c
