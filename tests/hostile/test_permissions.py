"""Item 9 and the rough edges on permissions: an unreadable folder or file, a file inside a folder that
may not be entered, a read-only output folder. Each is one line; the rest of the batch is written.

File permissions do not bind root, so as root the CLI runs in a child without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (the kernel then checks modes for it as for any user).
"""

import os

import pytest
from PIL import Image

from edge_colorizer.io import shown
from tests.hostile.conftest import all_files, can_drop_root_privileges, cli_in_child, error_lines
from tests.hostile.corpus import photo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_drop_root_privileges(), reason="root without CAP_SETPCAP: modes cannot bind it"),
]


@pytest.fixture
def locked_tree(tmp_path):
    src, closed, readonly = tmp_path / "in", tmp_path / "closed", tmp_path / "readonly"
    for folder in (src / "locked", closed, readonly):
        folder.mkdir(parents=True)
    for path in (src / "ok.png", src / "locked" / "inside.png", src / "secret.png", closed / "named.png"):
        Image.fromarray(photo()).save(path)
    (src / "locked").chmod(0o000)  # cannot be listed
    (src / "secret.png").chmod(0o000)  # cannot be read
    closed.chmod(0o600)  # can be listed, not entered: a file named in it cannot be reached
    readonly.chmod(0o555)
    yield src, closed, readonly
    for path in (src / "locked", src / "secret.png", closed, readonly):
        path.chmod(0o755)


def test_unreadable_inputs_and_outputs_are_one_line_each(locked_tree, tmp_path, tiny_ckpt):
    src, closed, readonly = locked_tree
    model = ["--model", str(tiny_ckpt)]
    batch, read_only_out = cli_in_child(
        ["colorize", src, closed / "named.png", "--out", tmp_path / "out", *model],
        ["colorize", src / "ok.png", "--out", readonly / "sub", *model],
        drop_root_privileges=True,
    )
    assert batch["code"] == 1 and batch["exception"] is None, batch
    lines = error_lines(batch["stderr"])
    assert len(lines) == 3, lines
    assert f"error: {shown(closed / 'named.png')}: cannot access (Permission denied)" in lines
    assert f"error: {shown(src / 'locked')}: cannot read folder (Permission denied)" in lines
    assert f"error: {shown(src / 'secret.png')}: cannot read (Permission denied)" in lines
    assert all_files(tmp_path / "out") == ["ok.png"]  # the rest of the batch is written

    assert read_only_out["code"] == 1 and read_only_out["exception"] is None
    (line,) = error_lines(read_only_out["stderr"])
    assert line == f"Error: {shown(readonly / 'sub')}: cannot create the output folder (Permission denied)"
    assert not os.path.exists(readonly / "sub")
