"""Issue 11 through ``edge-colorizer colorize``: every hostile input ends as one line naming the file
and the reason, the rest of the batch is written, the exit code is 1, nothing partial is left."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from edge_colorizer.io import shown
from tests.hostile.conftest import all_files, cli, error_lines
from tests.hostile.corpus import build_colorize_corpus, photo


def _digest(folder):
    return {p: hashlib.sha256((folder / p).read_bytes()).hexdigest() for p in all_files(folder)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, tiny_ckpt):
    """The whole corpus colorized in one run, plus the command-line arguments that yield nothing."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = build_colorize_corpus(root)
    (root / "empty_folder").mkdir()
    Image.fromarray(photo()).save(root / "anim.gif", save_all=True, append_images=[Image.fromarray(photo(seed=1))])
    extra_args = {
        "missing.png": "no such file or folder",
        "nomatch-*.png": "no file matches this pattern",
        "empty_folder": "no images in this folder",
        "anim.gif": "unsupported file type .gif",
    }
    before = _digest(root / "in")
    out = root / "out"
    args = [root / "in", *(root / a for a in extra_args), "--out", out, "--model", tiny_ckpt]
    code, stdout, stderr = cli("colorize", *args)
    return corpus, extra_args, out, code, stdout, stderr, before


def test_exit_code_is_1_and_the_batch_went_on(batch):
    corpus, extra, out, code, stdout, stderr, _ = batch
    assert code == 1
    assert f"wrote {len(corpus.good)} image(s)" in stdout
    assert f"{len(corpus.bad) + len(extra)} failed" in stdout
    assert "Traceback" not in stdout + stderr


def test_one_line_per_bad_file_naming_it_and_the_reason(batch):
    corpus, extra, out, code, stdout, stderr, _ = batch
    lines = error_lines(stderr)
    expected = {str(corpus.root / rel): words for rel, words in {**corpus.bad, **extra}.items()}
    assert len(lines) == len(expected), "\n".join(lines)
    for path, words in expected.items():
        mine = [line for line in lines if line.startswith(f"error: {shown(path)}: ")]
        assert len(mine) == 1 and words in mine[0], (path, lines)


def test_names_reach_the_terminal_escaped(batch):
    corpus, extra, out, code, stdout, stderr, _ = batch
    assert "\x1b" not in stderr + stdout and "\udce9" not in stderr
    assert "esc\\x1b[31mred.png: not an image" in stderr
    assert "latin\\xe9.png: not an image" in stderr
    assert len(stderr.splitlines()) == len(error_lines(stderr))  # nothing but the error lines


def test_good_files_are_written_whole_and_nothing_else(batch):
    corpus, extra, out, code, stdout, stderr, _ = batch
    assert all_files(out) == sorted(corpus.good.values())  # no temporary, no partial file, no extra
    for rel in corpus.good.values():
        with Image.open(out / rel) as im:
            im.load()


def test_inputs_are_untouched(batch):
    corpus, extra, out, code, stdout, stderr, before = batch
    assert _digest(corpus.root / "in") == before


def test_malformed_exif_is_still_turned_upright(batch):
    corpus, _, out, *_ = batch
    for name in ("exif_typeerror.jpg", "exif_structerror.jpg"):
        assert Image.open(out / name).size == (24, 32)  # 32x24 stored, orientation 6: shown 24 wide


def test_transparency_is_kept(batch):
    corpus, _, out, *_ = batch
    src = corpus.root / "in"
    for name in ("trns_gray.png", "trns_rgb.png", "trns_16.png", "palette_trns.png"):
        written = np.asarray(Image.open(out / name))
        assert written.shape[-1] == 4, name
        expected = np.asarray(Image.open(src / name).convert("RGBA"))[..., 3] if name != "trns_16.png" else None
        if expected is not None:
            assert np.array_equal(written[..., 3], expected), name
        assert 0 < (written[..., 3] == 0).sum() < written[..., 3].size, name  # some, not all, transparent
    assert (np.asarray(Image.open(out / "sub" / "rgba.png"))[..., 3] == 90).all()


def test_icc_profile_and_dpi_are_kept(batch):
    corpus, _, out, *_ = batch
    for name in ("icc_dpi.png", "icc_dpi.jpg"):
        src, dst = Image.open(corpus.root / "in" / name), Image.open(out / name)
        assert dst.info["icc_profile"] == src.info["icc_profile"]
        assert np.allclose(dst.info["dpi"], (300, 300), atol=0.01)


def test_float_tiff_in_0_255_is_not_white(batch):
    corpus, _, out, *_ = batch
    src = np.asarray(Image.open(corpus.root / "in" / "float255.tif"))
    dst = np.asarray(Image.open(out / "float255.tif").convert("L")).astype(float)
    assert abs(dst.mean() - src.mean()) < 12 and dst.std() > 20


def test_long_names_links_and_odd_names(batch):
    corpus, _, out, *_ = batch
    assert (out / ("n" * 245 + ".png")).is_file()  # the temporary's name never exceeds 255 bytes
    assert (out / "linked" / "linked.png").is_file()  # a linked folder is followed, once
    assert (out / "new\nline.png").is_file()
    assert not any("loop" in p for p in all_files(out))


def test_a_second_run_into_a_folder_inside_the_input_reads_only_the_inputs(tmp_path, tiny_ckpt):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(2):
        Image.fromarray(photo(seed=i)).save(src / f"p{i}.png")
    for _ in range(2):
        code, stdout, stderr = cli("colorize", src, "--out", src / "colored", "--model", tiny_ckpt)
        assert code == 0 and "wrote 2 image(s)" in stdout and not stderr.strip(), stderr
    assert all_files(src) == ["colored/p0.png", "colored/p1.png", "p0.png", "p1.png"]
    code, stdout, stderr = cli("colorize", src, "--out", src, "--model", tiny_ckpt)
    assert code == 1 and f"{shown(src)}: is the output folder" in stderr


def test_out_named_like_an_image_is_refused_before_anything(tmp_path, tiny_ckpt):
    Image.fromarray(photo()).save(tmp_path / "a.png")
    code, stdout, stderr = cli("colorize", tmp_path / "a.png", "--out", tmp_path / "result.png", "--model", tiny_ckpt)
    assert code == 1 and len(error_lines(stderr)) == 1 and "named like an image file" in stderr
    assert not (tmp_path / "result.png").exists()


def test_identical_names_from_two_folders(tmp_path, tiny_ckpt):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(photo()).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    code, stdout, stderr = cli("colorize", tmp_path / "a", tmp_path / "b", "--out", out, "--model", tiny_ckpt)
    assert code == 1 and all_files(out) == ["x.png"]
    (line,) = error_lines(stderr)
    assert line.startswith(f"error: {tmp_path / 'b' / 'x.png'}: output ") and f"from {tmp_path / 'a' / 'x.png'}" in line


def test_side_by_side_name_too_long_is_one_line(tmp_path, tiny_ckpt):
    name = "n" * 245 + ".png"
    Image.fromarray(photo()).save(tmp_path / name)
    code, stdout, stderr = cli(
        "colorize", tmp_path / name, "--out", tmp_path / "o", "--side-by-side", "--model", tiny_ckpt
    )
    assert code == 1 and "would be longer than 255 bytes" in stderr and all_files(tmp_path / "o") == []


@pytest.mark.parametrize(
    "size, words", [("100000", "100000 is not in the range 16<=x<=1024"), ("100", "100 is not a multiple of 8")]
)
def test_unchecked_sizes_are_usage_errors(tmp_path, size, words):
    Image.fromarray(photo()).save(tmp_path / "a.png")
    code, stdout, stderr = cli("colorize", tmp_path / "a.png", "--out", tmp_path / "o", "--size", size)
    assert code == 2 and words in stderr and not (tmp_path / "o").exists()


def test_killed_runs_temporaries_are_swept_and_live_ones_kept(tmp_path, tiny_ckpt):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = out / "sub" / f".x.png.edge-colorizer-{int(dead.stdout)}-0a1b2c3d.tmp"
    live = out / f".y.png.edge-colorizer-{os.getpid()}-0a1b2c3d.tmp"  # a writer still running: kept
    stale.write_bytes(b"half a png")
    live.write_bytes(b"being written")
    Image.fromarray(photo()).save(tmp_path / "x.png")
    code, stdout, stderr = cli("colorize", tmp_path / "x.png", "--out", out, "--model", tiny_ckpt)
    assert code == 0 and "removed 1 unfinished temporary file(s)" in stderr
    assert not stale.exists() and live.exists()
