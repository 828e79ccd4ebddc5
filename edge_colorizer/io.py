"""Image I/O: find inputs, decode any common image to uint8 RGB (+ alpha), write outputs atomically.

Every failure is a ``ValueError`` whose message is one line that starts with the file name (control
characters escaped) and says why, so a batch can report one line per bad file and go on.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets
import shutil
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

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
# What each output format can carry besides the pixels (Pillow's writers).
_KEEPS_ALPHA = ("PNG", "WEBP", "TIFF")
_KEEPS_ICC = ("JPEG", "PNG", "WEBP", "TIFF")
_KEEPS_DPI = ("JPEG", "PNG", "TIFF", "BMP")

# Images above this many pixels are refused before they are decoded (``--max-pixels`` raises it).
# Colorizing costs about 100 bytes per pixel today, so the default keeps one image near 5 GB.
DEFAULT_MAX_PIXELS = 50_000_000
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems

# EXIF orientation -> the Pillow transpose that shows the picture upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def shown(path: str | os.PathLike) -> str:
    """``path`` as it can be printed: control and invisible format characters (ESC, newline, bidi
    overrides) escaped, bytes that are not UTF-8 shown as ``\\xNN``."""
    out = []
    for ch in os.fspath(path):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000 or code in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# zero-width and direction marks, bidi embeddings/overrides/isolates, line and paragraph separators
_INVISIBLE = {
    0x200B,
    0x200C,
    0x200D,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    0xFEFF,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
}


_SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes some libraries put in their messages


def one_line(exc: BaseException, limit: int = 300, with_type: bool = True) -> str:
    """An exception as one short line: ``Type: message`` (or the message alone), whitespace collapsed,
    colour codes dropped, other control characters shown escaped."""
    text = shown(" ".join(_SGR.sub("", str(exc)).split()))
    text = f"{text[:limit]}..." if len(text) > limit else text
    if not text:
        return exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if with_type else text


def os_reason(exc: OSError) -> str:
    """The reason of an OSError without the file names Python appends (they are printed once, first)."""
    return exc.strerror or one_line(exc)


# ---- temporary files -------------------------------------------------------------------------------
# A temporary is ".<target name>.edge-colorizer-<pid>-<token>.tmp" beside its target: hidden (folder
# scans skip it), without an image suffix (no pattern for images matches it), recognisable, and its
# writer's pid says whether it is still being written. An exported artifact's temporary keeps the
# artifact's suffix after ".tmp" (converters check it); artifacts are never images.
_TEMP_TAG = "edge-colorizer"
_TEMP_RE = re.compile(rf"^\.(?P<name>.+)\.{_TEMP_TAG}-(?P<pid>\d+)-[0-9a-z_]+\.(tmp|old)(\.\w+)?$", re.DOTALL)


def _truncate_name(name: str, limit: int) -> str:
    """``name`` shortened, by whole characters, to at most ``limit`` bytes."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def temporary_name(path: str | Path, suffix: str = "", kind: str = "tmp") -> str:
    """A fresh temporary name for ``path`` (``suffix`` after ``.tmp``, e.g. ``.onnx``; ``kind`` "old" for
    a replaced folder moved aside); at most 255 bytes however long the target's name is."""
    tail = f".{_TEMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}.{kind}{suffix}"
    return "." + _truncate_name(Path(path).name, NAME_MAX - 1 - len(tail)) + tail


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is named as an edge-colorizer temporary (an unfinished write)."""
    return _TEMP_RE.match(Path(path).name) is not None


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _stale(name: str) -> bool:
    m = _TEMP_RE.match(name)
    return m is not None and not _process_running(int(m["pid"]))


def sweep_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries under ``folder`` whose writer is no longer running (killed mid-write);
    returns what was removed. Links are not followed; a temporary still being written is kept."""
    removed = []
    for parent, dirs, files in os.walk(folder):
        for name in [*files, *dirs]:
            if _stale(name):
                path = Path(parent) / name
                if remove_path(path):
                    removed.append(path)
        dirs[:] = [d for d in dirs if not _stale(d)]
    return removed


def remove_path(path: Path) -> bool:
    """Remove a file or (without following links) a folder; False if another run removed it first."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        return True
    except FileNotFoundError:
        return False


@contextmanager
def new_folders_dropped_on_failure(folder: str | Path, *inside: str) -> Iterator[None]:
    """When the block ends by an exception (a stop, an error), the folders it created and left empty
    are removed: ``folder``, the parents made for it and its subfolders ``inside``, deepest first. A
    folder that existed before, or that holds anything, stays."""
    folder = Path(folder)
    candidates = [folder / name for name in inside] + [folder, *folder.parents]
    new = [path for path in candidates if not os.path.lexists(path)]
    try:
        yield
    except BaseException:
        for path in new:
            try:
                path.rmdir()
            except OSError:  # not empty, or already gone
                pass
        raise


def sweep_target(path: str | Path) -> None:
    """Remove the stale temporaries (files or folders) of one target, including the pid-less names older
    versions wrote."""
    path = Path(path)
    prefix = "." + _truncate_name(path.name, 200)  # every temporary name of this target starts so
    legacy = re.compile(rf"^\.{re.escape(path.name)}\.[0-9a-z_]+\.tmp$")
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        if _stale(name) or (not _TEMP_RE.match(name) and legacy.match(name)):
            remove_path(path.parent / name)


@contextmanager
def atomic_write(path: str | Path, sweep: bool = True, sync: bool = True) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary beside it, renamed over ``path`` only when the block ends
    normally; on any exception (SIGTERM and Ctrl-C included, see the CLI) the temporary is removed.

    The file gets the mode a plain ``open`` would give (0o666 less the umask). ``sweep`` first removes
    temporaries of the same target left by killed writers; ``sync`` flushes to disk before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        sweep_target(path)
    tmp = None
    try:
        while tmp is None:
            candidate = path.parent / temporary_name(path)
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                tmp = candidate
            except FileExistsError:
                continue
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_write(path) as f:
        f.write(data)
    return Path(path)


def fit_long_side(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """``rgb`` (H, W, C) uint8 shrunk (Lanczos) so its long side is at most ``max_side`` (None: as is)."""
    if not max_side or max(rgb.shape[:2]) <= max_side:
        return rgb
    img = Image.fromarray(rgb)
    scale = max_side / max(img.size)
    return np.asarray(img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file (the same path, a link to it, or a hard link); False when
    either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def nearest_writable_folder(path: Path, start: Path) -> Path:
    """The nearest existing folder at or above ``start``, where ``path`` would be created; a one-line
    ValueError naming ``path`` if it is not a folder or cannot be written."""
    folder = start
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        raise ValueError(f"{shown(path)}: {shown(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{shown(path)}: cannot write in {shown(folder)} (permission denied)")
    return folder


def check_writable_file(path: str | Path, suffixes: Iterable[str] | None = None) -> None:
    """Raise a one-line ValueError now if ``path`` could not be written later (checked before long runs)."""
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in tuple(suffixes):
        raise ValueError(f"{shown(path)}: unsupported output format {shown(path.suffix or '(none)')}")
    if os.path.isdir(path):
        raise ValueError(f"{shown(path)}: is a folder, a file name is needed")
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise ValueError(f"{shown(path)}: file name longer than {NAME_MAX} bytes")
    nearest_writable_folder(path, path.absolute().parent)


def check_writable_folder(path: str | Path) -> None:
    """Raise a one-line ValueError now if ``path`` could not become an output folder later (a file, a
    path under a file, no permission); creates nothing."""
    path = Path(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"{shown(path)}: is a file, a folder is needed")
    nearest_writable_folder(path, path.absolute())


def check_outside(path: str | Path, folder: str | Path, option: str) -> None:
    """Raise a one-line ValueError if ``path`` (an output) is ``folder`` or inside it, ``folder`` being
    photos a command reads (``option`` names it): an output there would replace a photo or become one."""
    if folder and _inside(os.path.realpath(path), {os.path.realpath(folder)}):
        raise ValueError(f"{shown(path)}: is inside {option} {shown(folder)}, the photos it reads; write it elsewhere")


# ---- finding inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputProblem:
    """An argument (or a folder under one) that yields no image; ``kind`` says why."""

    path: str
    reason: str
    kind: str  # "missing", "unreadable", "unsupported", "empty", "output"

    def __str__(self) -> str:
        return f"{shown(self.path)}: {self.reason}"


@dataclass(frozen=True)
class FoundImage:
    path: Path
    root: Path | None  # the folder argument it was found under (its structure is kept), else None


@dataclass
class InputScan:
    images: list[FoundImage] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _scan_folder(root: Path, exclude: set[str], problems: list[InputProblem]) -> list[Path]:
    """Image files under ``root``, recursively; links to folders are followed (each real folder once),
    hidden entries (``.x``, macOS ``._x``, our temporaries) and the ``exclude`` folders are skipped."""
    found: list[Path] = []
    seen: set[str] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue  # a link back into a folder already read
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)  # deterministic: which link wins
        except OSError as exc:
            problems.append(InputProblem(str(folder), f"cannot read folder ({os_reason(exc)})", "unreadable"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError as exc:
                problems.append(InputProblem(entry.path, f"cannot read ({os_reason(exc)})", "unreadable"))
                continue
            if is_dir:
                if os.path.realpath(entry.path) not in exclude:
                    subfolders.append(Path(entry.path))
            elif is_file:
                if _is_image_name(entry.name):
                    found.append(Path(entry.path))
            elif entry.is_symlink() and _is_image_name(entry.name):
                problems.append(InputProblem(entry.path, "broken link", "unreadable"))
        pending += reversed(subfolders)  # depth first, in name order
    return sorted(found)


def _inside(path: str, folders: set[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def scan_inputs(inputs: Iterable[str | os.PathLike], exclude: Iterable[str | Path] = ()) -> InputScan:
    """Expand files, folders (recursively) and glob patterns, in order, de-duplicated.

    A named file is taken if its suffix is an image format's; a folder contributes its image files;
    a pattern its matching files. What yields nothing (missing path, pattern without a match, folder
    without images, unreadable folder) is an :class:`InputProblem`, never an exception. Files under
    ``exclude`` (the output folder) are never found by a folder or a pattern.
    """
    excluded = {os.path.realpath(p) for p in exclude}
    scan = InputScan()
    taken: set[str] = set()

    def take(path: Path, root: Path | None) -> None:
        key = os.path.abspath(path)
        if key not in taken:
            taken.add(key)
            scan.images.append(FoundImage(path, root))

    for item in inputs:
        item = os.fspath(item)
        path = Path(item)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:  # e.g. a file inside a folder we may not enter, a link loop
            scan.problems.append(InputProblem(item, f"cannot access ({os_reason(exc)})", "unreadable"))
            taken.add(os.path.abspath(path))  # said once: a folder given too does not report it again
            continue
        if st is None and glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if os.path.isfile(m))
            matches = [m for m in matches if not _inside(os.path.realpath(m), excluded)]
            if not matches:
                scan.problems.append(InputProblem(item, "no file matches this pattern", "missing"))
            for m in matches:
                if _is_image_name(m.name):
                    take(m, None)
                else:
                    scan.problems.append(_unsupported(m))
        elif st is None:
            scan.problems.append(InputProblem(item, "no such file or folder", "missing"))
        elif stat.S_ISDIR(st.st_mode):
            if os.path.realpath(path) in excluded:
                scan.problems.append(InputProblem(item, "is the output folder; its images are not inputs", "output"))
                continue
            before = len(scan.problems)
            found = _scan_folder(path, excluded, scan.problems)
            reported = len(scan.problems) > before
            # a file already reported (named, and unreadable) is not reported again from its folder
            scan.problems[before:] = [p for p in scan.problems[before:] if os.path.abspath(p.path) not in taken]
            if not found and not reported:
                suffixes = ", ".join(IMAGE_SUFFIXES)
                scan.problems.append(InputProblem(item, f"no images in this folder ({suffixes})", "empty"))
            for f in found:
                take(f, path)
        elif not stat.S_ISREG(st.st_mode):
            scan.problems.append(InputProblem(item, "not a regular file", "unsupported"))
        elif is_temporary(path):
            scan.problems.append(InputProblem(item, "an unfinished temporary file of edge-colorizer", "unsupported"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            scan.problems.append(_unsupported(path))
        else:
            take(path, None)
    return scan


def _unsupported(path: Path) -> InputProblem:
    what = f"file type {shown(path.suffix)}" if path.suffix else "a file without a suffix"
    return InputProblem(str(path), f"unsupported {what} (reads and writes {', '.join(IMAGE_SUFFIXES)})", "unsupported")


def find_images(inputs: Iterable[str], on_problem: Callable[[InputProblem], None] | None = None) -> list[Path]:
    """The image files that :func:`scan_inputs` finds, for callers without a batch report.

    A missing path raises FileNotFoundError; an unreadable folder, a broken link or an unsupported named
    file raises ValueError, or with ``on_problem`` is handed to it and the rest go on; a folder without
    images contributes nothing.
    """
    scan = scan_inputs(inputs)
    for problem in scan.problems:
        if problem.kind == "missing":
            raise FileNotFoundError(str(problem))
        if problem.kind != "empty":
            if on_problem is None:
                raise ValueError(str(problem))
            on_problem(problem)
    return [f.path for f in scan.images]


# ---- decoding -------------------------------------------------------------------------------------


def is_gray(rgb: np.ndarray) -> bool:
    """R = G = B everywhere: a photo with no colour to learn from or to score against."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


@dataclass
class DecodedImage:
    path: Path
    rgb: np.ndarray  # uint8 (H, W, 3); R = G = B for gray inputs
    alpha: np.ndarray | None  # uint8 (H, W) when the input had transparency (alpha channel or tRNS)
    source_mode: str  # PIL mode of the file, e.g. "L", "RGB", "I;16", "CMYK", "P"
    icc_profile: bytes | None = None  # the input's RGB ICC profile, to tag the output with
    dpi: tuple[float, float] | None = None


def _to_uint8(arr: np.ndarray, name: str = "image") -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (and 32-bit "I" mode holding 16-bit data): scale the full range down to 8 bits
        top = 65535.0 if arr.max(initial=0) > 255 or arr.dtype == np.uint16 else 255.0
        return np.clip(np.round(arr.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
    # floating point: the range is read from the data (files do not say it): 0-1, 0-255 or 0-65535
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max(initial=0.0))
    if top > 65535.0:
        raise _Refused(f"{name}: floating-point pixels up to {top:g}; expected a 0-1, 0-255 or 0-65535 range")
    scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 255.0 / 65535.0
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


def _orientation(im: Image.Image, name: str) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception as exc:
        raise _Refused(f"{name}: malformed EXIF metadata ({one_line(exc)})") from None
    return value if isinstance(value, int) else 1  # a non-numeric orientation is ignored, as Pillow does


def _tRNS_alpha(im: Image.Image) -> np.ndarray | None:
    """The alpha plane of a PNG's single transparent colour (tRNS in L, I;16 and RGB images)."""
    key = im.info.get("transparency")
    if key is None or isinstance(key, bytes) or im.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "RGB"):
        return None
    arr = np.asarray(im)
    opaque = np.any(arr != np.asarray(key), axis=-1) if arr.ndim == 3 else arr != key
    return opaque.astype(np.uint8) * 255


def _icc_rgb(im: Image.Image) -> bytes | None:
    icc = im.info.get("icc_profile")
    # the header's colour space (bytes 16-20): only an RGB profile describes an RGB output
    return icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " and im.mode in ("RGB", "RGBA", "P", "PA") else None


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _decode(im: Image.Image, path: Path, name: str) -> DecodedImage:
    mode = im.mode
    icc, dpi = _icc_rgb(im), _dpi(im)
    im.load()
    method = _ORIENTATION.get(_orientation(im, name))
    if method is not None:
        # our own transpose: Pillow's exif_transpose also rewrites the EXIF block and fails on a
        # malformed tag (TypeError, struct.error) although the picture and its orientation are fine
        im = im.transpose(method)
    alpha = _tRNS_alpha(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(im.getchannel("A"))
        im = im.convert("RGB" if im.mode.startswith("RGB") else "L")
    if im.mode not in ("1", "L", "RGB", "F") and not im.mode.startswith("I"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    arr = _to_uint8(np.asarray(im), name)
    del im
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise _Refused(f"{name}: unsupported pixel layout (mode {mode}, shape {arr.shape})")
    if min(arr.shape[:2]) < 1:
        raise _Refused(f"{name}: image has no pixels")
    return DecodedImage(path, np.ascontiguousarray(arr), alpha, mode, icc, dpi)


class _Refused(ValueError):
    """A ValueError of ours, already one line: passed through as is."""


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding it; None if it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:
                    return im.size
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except Exception:
        return None


def read_image(
    path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, limit_hint: str = ", --max-pixels raises it"
) -> DecodedImage:
    """Decode ``path`` (EXIF orientation applied) to uint8 RGB and an optional alpha plane.

    Refused, each with a one-line ValueError: missing, empty, non-image, truncated or corrupt files,
    animated or multi-page images, images over ``max_pixels`` (checked from the header, before any
    pixel is decoded; None for no limit; ``limit_hint`` ends that message). A MemoryError is let through, for
    the caller to skip the file.
    """
    path = Path(path)
    name = shown(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read ({os_reason(exc)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name}: not a file")
    if st.st_size == 0:
        raise ValueError(f"{name}: empty file (0 bytes)")
    # Pillow's decompression-bomb check (a warning, then an error at twice its limit) is replaced by
    # ``max_pixels``, which the user can raise; its other warnings (corrupt EXIF...) are not for users
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None
            with Image.open(path) as im:
                width, height = im.size
                if max_pixels and width * height > max_pixels:
                    raise _Refused(
                        f"{name}: too large ({width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                        f"{max_pixels / 1e6:g} megapixels{limit_hint})"
                    )
                frames = getattr(im, "n_frames", 1)
                if frames > 1:
                    raise _Refused(f"{name}: {frames} frames (animated or multi-page); only still images are colorized")
                return _decode(im, path, name)
    except (_Refused, MemoryError):
        raise
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image (unrecognised format)") from None
    except OSError as exc:
        if exc.errno:  # the file system's refusal (permission, I/O error), not the decoder's
            raise ValueError(f"{name}: cannot read ({os_reason(exc)})") from None
        raise ValueError(f"{name}: cannot decode ({shown(' '.join(str(exc).split()))})") from None
    except Exception as exc:  # Pillow's plugins raise many types on corrupt data (SyntaxError, struct.error...)
        raise ValueError(f"{name}: cannot decode ({one_line(exc)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


# ---- writing --------------------------------------------------------------------------------------


def write_image(
    path: str | Path,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    sweep: bool = True,
) -> Path:
    """Write uint8 RGB (+ alpha, ICC profile and DPI where the format keeps them) to ``path``
    atomically; returns the path. ``sweep=False`` skips looking for stale temporaries of ``path``
    (a batch sweeps its whole output folder once instead)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{shown(path)}: unsupported output format {shown(path.suffix)!r}")
    img = Image.fromarray(rgb, "RGB")
    if alpha is not None and fmt in _KEEPS_ALPHA:
        img.putalpha(Image.fromarray(alpha, "L"))
    options: dict = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if icc_profile and fmt in _KEEPS_ICC:
        options["icc_profile"] = icc_profile
    if dpi and fmt in _KEEPS_DPI:
        options["dpi"] = dpi
    with atomic_write(path, sweep=sweep) as f:
        img.save(f, format=fmt, **options)
    return path
