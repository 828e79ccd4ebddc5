import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_colorizer.checkpoint import save_model
from edge_colorizer.cli import main
from edge_colorizer.models import create_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A 0.05 M-parameter unet_s: the batch behaviour does not depend on the weights."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(create_model("unet_s", width=8).eval(), path, input_size=32)
    return path


def cli(*args):
    """The CLI in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(
        main,
        [a if isinstance(a, str) else os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args],
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error:", "Error:"))]


def all_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden ones included), as relative paths, links not followed."""
    found = []
    for parent, _dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(parent, f), folder) for f in files]
    return sorted(found)


_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from click.testing import CliRunner
    from edge_colorizer.cli import main
    runs = []
    for args in json.loads(sys.argv[1]):
        r = CliRunner().invoke(main, args)
        runs.append({"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                     "exception": None if r.exception is None or isinstance(r.exception, SystemExit)
                     else repr(r.exception),
                     "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    print(json.dumps(runs))
    """
)


def cli_in_child(*runs: list, address_space_mib: int | None = None, drop_root_privileges: bool = False) -> list[dict]:
    """Run CLI invocations one after the other in a fresh Python process; returns for each its exit
    code, stdout, stderr, exception (None or its repr) and the process's peak RSS (MiB) after it.

    ``address_space_mib`` caps the process (RLIMIT_AS), as a small machine would. ``drop_root_privileges``
    takes CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH away from root, so file permissions apply as for a user.
    """

    def prepare():
        import resource

        if address_space_mib:
            limit = address_space_mib * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if drop_root_privileges and os.geteuid() == 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, out of the bounding set before exec
                if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    args = json.dumps([[os.fspath(a) for a in run] for run in runs])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=prepare,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def can_drop_root_privileges() -> bool:
    if os.geteuid() != 0:
        return True
    try:
        subprocess.run(
            [sys.executable, "-c", "pass"],
            preexec_fn=lambda: __import__("ctypes").CDLL(None).prctl(24, 1, 0, 0, 0) == 0 or 1 / 0,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return False
    return True
