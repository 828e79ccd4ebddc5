"""Item 4: large images. Over the pixel limit an image is refused from its header, before decoding,
so memory stays flat; a raised limit that runs out of memory skips that file and the batch goes on.
Peak memory is measured in a child process capped with RLIMIT_AS, as on a small machine."""

import numpy as np
import pytest
from PIL import Image

from tests.hostile.conftest import all_files, cli_in_child, error_lines
from tests.hostile.corpus import big_gray_png, photo

ADDRESS_SPACE_MIB = 2048  # torch maps ~650 MiB; the 196-megapixel RGB input and output alone need 1.2 GB


@pytest.mark.slow
def test_large_images_in_bounded_memory(tmp_path, tiny_ckpt):
    big_gray_png(tmp_path / "big.png", 10000, 10000)  # 97 KB on disk, 100 megapixels (the file)
    big_gray_png(tmp_path / "bigger.png", 14000, 14000)  # over twice Pillow's own bomb limit
    Image.fromarray(photo()).save(tmp_path / "good.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1000, 1500, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    model = ["--model", str(tiny_ckpt)]
    small, refused, measured, exhausted = cli_in_child(
        ["colorize", tmp_path / "good.png", "--out", tmp_path / "o1", *model],
        ["colorize", tmp_path / "big.png", tmp_path / "good.png", "--out", tmp_path / "o2", *model],
        ["colorize", tmp_path / "photo.png", "--out", tmp_path / "o3", *model],
        [
            "colorize",
            tmp_path / "bigger.png",
            tmp_path / "good.png",
            "--out",
            tmp_path / "o4",
            "--max-pixels",
            "300000000",
            *model,
        ],
        address_space_mib=ADDRESS_SPACE_MIB,
    )
    assert small["code"] == 0, small

    # the default limit: one line, the good file written, no decoding (peak RSS unchanged)
    assert refused["code"] == 1 and refused["exception"] is None
    (line,) = error_lines(refused["stderr"])
    assert "big.png: too large (10000x10000 = 100.0 megapixels; the limit is 50 megapixels" in line
    assert "--max-pixels raises it" in line and "DecompressionBomb" not in refused["stderr"]
    assert all_files(tmp_path / "o2") == ["good.png"]
    assert refused["maxrss_mib"] - small["maxrss_mib"] < 50

    # what a decoded image costs, end to end (read, colorize, write): reported, and bounded loosely
    # (the allocator makes this small-image figure vary: 72-119 bytes/pixel seen for the same code)
    per_pixel = (measured["maxrss_mib"] - refused["maxrss_mib"]) * 2**20 / (1000 * 1500)
    print(f"colorize peak memory: {per_pixel:.0f} bytes per pixel (1500x1000 photo)")
    assert measured["code"] == 0 and per_pixel < 250

    # a raised limit: Pillow's DecompressionBombError never shows, the memory error skips one file
    assert exhausted["code"] == 1 and exhausted["exception"] is None, exhausted
    (line,) = error_lines(exhausted["stderr"])
    assert "bigger.png: out of memory (14000x14000 = 196.0 megapixels); skipped" in line
    assert "DecompressionBomb" not in exhausted["stderr"] and "Traceback" not in exhausted["stderr"]
    assert all_files(tmp_path / "o4") == ["good.png"]
