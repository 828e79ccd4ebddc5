"""Item 6: ``evaluate`` on hostile folders. A photo that cannot be scored is one line and left out of
the means; the table and the JSON are still written; the JSON is strict (no NaN, no Infinity)."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from edge_colorizer.io import shown
from tests.hostile.conftest import cli, error_lines
from tests.hostile.corpus import photo


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{constant} in JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def mixed(tmp_path):
    data = tmp_path / "eval"
    data.mkdir()
    for i in range(2):
        Image.fromarray(photo(48, 64, seed=i)).save(data / f"good{i}.png")
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.fromarray(photo(8, 8)).save(data / "tiny8.png")
    Image.fromarray(photo(48, 64).mean(axis=2).astype(np.uint8)).save(data / "gray.png")
    return data


def test_bad_photos_are_one_line_each_and_the_rest_is_scored(tmp_path, mixed, tiny_ckpt):
    json_path = tmp_path / "not" / "yet" / "there" / "results.json"  # a missing folder is created
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide-by-zero or Pillow's warnings would fail here
        code, stdout, stderr = cli(
            "evaluate", "--data", mixed, "--model", tiny_ckpt, "--max-side", 64, "--json", json_path
        )
    assert code == 1 and "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == 3, lines
    assert any(f"{shown(mixed / 'corrupt.png')}: not an image" in line for line in lines)
    assert any(f"{shown(mixed / 'tiny8.png')}: 8x8 px" in line and "too small for LPIPS" in line for line in lines)
    assert any(f"{shown(mixed / 'gray.png')}: a gray photo" in line for line in lines)
    assert "| gray (ab = 0) | 2 |" in stdout and "nan" not in stdout and "inf" not in stdout
    saved = _strict_json(json_path)
    assert [r["images"] for r in saved["quality"]] == [2, 2] and len(saved["skipped"]) == 3
    assert all(r["lpips"] is not None and r["psnr_db"] < 100 for r in saved["quality"])


def test_tiny_photo_is_scored_without_lpips(tmp_path, tiny_ckpt):
    data = tmp_path / "eval"
    data.mkdir()
    Image.fromarray(photo(8, 8)).save(data / "tiny8.png")
    code, stdout, stderr = cli("evaluate", "--data", data, "--model", tiny_ckpt, "--no-lpips")
    assert code == 0 and "| gray (ab = 0) | 1 |" in stdout and not error_lines(stderr)


def test_empty_or_all_gray_folder_is_one_line(tmp_path, tiny_ckpt):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stdout, stderr = cli("evaluate", "--data", empty, "--model", tiny_ckpt, "--no-lpips")
    assert code == 1 and error_lines(stderr) == [f"Error: {shown(empty)}: no photos to evaluate"]
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(np.full((40, 40), 128, np.uint8)).save(gray / "flat.png")
    code, stdout, stderr = cli("evaluate", "--data", gray, "--model", tiny_ckpt, "--no-lpips")
    assert code == 1 and len(error_lines(stderr)) == 2 and "no photos to evaluate" in stderr


@pytest.mark.parametrize("where", ["under_a_file", "folder"])
def test_unwritable_json_or_grid_fails_before_the_run(tmp_path, mixed, tiny_ckpt, where):
    (tmp_path / "a_file").write_text("x")
    target = tmp_path / "a_file" / "r.json" if where == "under_a_file" else tmp_path
    code, stdout, stderr = cli("evaluate", "--data", mixed, "--model", tiny_ckpt, "--json", target)
    assert code in (1, 2) and "| model |" not in stdout  # refused before any photo is scored
    assert len(error_lines(stderr)) == 1
    code, stdout, stderr = cli("evaluate", "--data", mixed, "--model", tiny_ckpt, "--grid", tmp_path / "g.gif")
    assert code == 1 and "unsupported output format" in stderr and "| model |" not in stdout


def test_outputs_never_replace_the_photos_read(tmp_path, mixed, tiny_ckpt):
    photo_path = mixed / "good0.png"
    before = photo_path.read_bytes()
    for option, target, message in [
        ("--grid", photo_path, "is inside --data"),
        ("--grid", mixed / "new_grid.png", "is inside --data"),
        ("--json", photo_path, "unsupported output format"),
    ]:
        code, stdout, stderr = cli("evaluate", "--data", mixed, "--model", tiny_ckpt, option, target)
        assert code == 1 and message in stderr and "| model |" not in stdout, (option, target, stderr)
        assert len(error_lines(stderr)) == 1
    assert photo_path.read_bytes() == before and not (mixed / "new_grid.png").exists()
    code, stdout, stderr = cli("evaluate", "--data", mixed, "--model", tiny_ckpt, "--max-side", -5)
    assert code == 2 and "--max-side" in stderr
    code, stdout, stderr = cli("evaluate", "--data", mixed, "--model", tiny_ckpt, "--max-side", 0)  # own size
    assert code == 1 and "| gray (ab = 0) | 2 |" in stdout  # the two good photos; the bad ones are skip lines
