"""Image I/O: find inputs, decode any common image to uint8 RGB (+ alpha), write outputs atomically.

Every failure is a ``ValueError`` whose message starts with the file name and says why, so a
batch can report one line per bad file and go on.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The formats edge-colorizer reads and writes, declared once.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
SAVE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


@dataclass
class DecodedImage:
    path: Path
    rgb: np.ndarray  # uint8 (H, W, 3); R = G = B for gray inputs
    alpha: np.ndarray | None  # uint8 (H, W) when the input had transparency
    source_mode: str  # PIL mode of the file, e.g. "L", "RGB", "I;16", "CMYK", "P"


def find_images(inputs: Iterable[str]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated list.

    A folder contributes only files with an image suffix; a file named explicitly is taken as is
    (a bad one is reported when it is read). A pattern or path that matches nothing raises.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            matches = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.exists():
            matches = [p]
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
        for m in matches:
            found[m] = None
    return list(found)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (and 32-bit "I" mode holding 16-bit data): scale the full range down to 8 bits
        top = 65535.0 if arr.max(initial=0) > 255 or arr.dtype == np.uint16 else 255.0
        return np.clip(np.round(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    return np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)  # float in [0, 1]


def read_image(path: str | Path) -> DecodedImage:
    """Decode ``path`` (EXIF orientation applied) to uint8 RGB and an optional alpha plane."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: cannot decode ({exc})") from None
    mode = im.mode
    alpha = None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(im.getchannel("A"))
        im = im.convert("RGB" if im.mode.startswith("RGB") else "L")
    if im.mode == "CMYK" or im.mode == "YCbCr" or im.mode == "LAB" or im.mode == "HSV":
        im = im.convert("RGB")
    arr = _to_uint8(np.asarray(im))
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{path}: unsupported pixel layout (mode {mode}, shape {arr.shape})")
    if min(arr.shape[:2]) < 1:
        raise ValueError(f"{path}: image has no pixels")
    return DecodedImage(path=path, rgb=np.ascontiguousarray(arr), alpha=alpha, source_mode=mode)


def default_file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp's 0o600 is too strict."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """Write uint8 RGB (+ alpha where the format keeps it) to ``path`` atomically; returns the path."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported output format {path.suffix!r}")
    img = Image.fromarray(rgb, "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        img.putalpha(Image.fromarray(alpha, "L"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
        img.save(tmp, format=fmt, **options)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
