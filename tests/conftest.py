import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def gcompris_root():
    """The real gcompris-qt-data package, fetched with apt-get download into the user cache."""
    from edge_colorizer.data.sources import default_cache_dir, fetch_package

    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("apt-get/dpkg not available")
    try:
        return fetch_package("gcompris-qt-data", default_cache_dir())
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot fetch gcompris-qt-data: {exc}")


@pytest.fixture(scope="session")
def real_photos():
    """A few real colour photos bundled with scikit-image (uint8 RGB)."""
    from skimage import data

    return {name: getattr(data, name)() for name in ("chelsea", "coffee", "astronaut")}
