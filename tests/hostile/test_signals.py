"""Item 2: a run stopped mid-write leaves no temporary behind (SIGTERM), or one that is recognisable,
never read as an input and swept by the next run (SIGKILL)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from edge_colorizer.io import is_temporary
from tests.hostile.conftest import REPO, all_files, cli, error_lines
from tests.hostile.corpus import photo

pytestmark = pytest.mark.slow  # each test starts the CLI in a fresh Python (torch import)

# the real CLI in a child process whose image writer stalls after writing half a file, so a signal
# lands mid-write every time
_STALLING_CLI = textwrap.dedent(
    """
    import sys, time
    from PIL import Image
    save = Image.Image.save
    def stalling_save(self, fp, *args, **kwargs):
        save(self, fp, *args, **kwargs)
        fp.truncate(fp.tell() // 2)
        fp.flush()
        time.sleep(120)
    Image.Image.save = stalling_save
    from edge_colorizer.cli import main
    main(sys.argv[1:], prog_name="edge-colorizer")
    """
)


def _start_and_stall(tmp_path, tiny_ckpt):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.fromarray(photo(seed=i)).save(src / f"p{i}.png")
    out = src / "colored"  # the output folder inside the input folder, as in item 3
    proc = subprocess.Popen(
        [sys.executable, "-c", _STALLING_CLI, "colorize", str(src), "--out", str(out), "--model", str(tiny_ckpt)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out.is_dir() and any(is_temporary(p) for p in out.iterdir())):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"no temporary appeared: {proc.communicate()}")
        time.sleep(0.05)
    return src, out, proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_ctrl_c_mid_write_removes_the_temporary(tmp_path, tiny_ckpt, sig):
    src, out, proc = _start_and_stall(tmp_path, tiny_ckpt)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert f"stopped by {sig.name}; unfinished outputs were removed" in stderr and "Traceback" not in stderr
    assert all_files(out) == []  # neither the temporary nor a partial output
    assert not out.exists()  # the folder this run made, left empty, is gone too


def test_sigkill_mid_write_leaves_a_temporary_that_the_next_run_sweeps_and_never_reads(tmp_path, tiny_ckpt):
    src, out, proc = _start_and_stall(tmp_path, tiny_ckpt)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    (left,) = all_files(out)
    assert left.startswith(".p0.png.edge-colorizer-") and left.endswith(".tmp")
    code, stdout, stderr = cli("colorize", src, "--out", out, "--model", tiny_ckpt)
    assert code == 0 and "wrote 3 image(s)" in stdout and not error_lines(stderr)
    assert "removed 1 unfinished temporary file(s)" in stderr
    assert all_files(out) == ["p0.png", "p1.png", "p2.png"]
    assert os.path.getsize(out / "p0.png") > 0
