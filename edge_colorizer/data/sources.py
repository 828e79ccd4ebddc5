"""Builds the offline photo pools from Debian packages: training (and validation) photos from
GCompris and eight other packages that ship photographs, evaluation photos from wallpaper packages.

Each package is fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache; nothing
is installed system-wide. Only real colour photos are kept (no drawings, icons, transparent
cut-outs or grayscale images), exact and near duplicates are dropped, and no image may appear in
two splits. About one training photo in ``VAL_EVERY`` (chosen by a hash of its package and path, so
the choice is stable) goes to ``val/`` for model selection; ``eval/`` is only for the final report. A JSON
manifest records source package, path, sha256, size and split.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from edge_colorizer.data.rcc import iter_rcc

TRAIN_PACKAGES = (
    "gcompris-qt-data",
    "kphotoalbum",
    "tuxpaint-data",
    "tuxtype-data",
    "jigzo-data",
    "lxqt-themes",
    "palapeli-data",
    "scribus-template",
)
EVAL_PACKAGES = (
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)
SPLITS = ("train", "val", "eval")
VAL_EVERY = 10
# GCompris bundles of artwork rather than photographs (paintings, painted backgrounds)
ARTWORK_BUNDLES = frozenset({"paintings", "babyshapes"})
# the "details" bundle mixes Van Gogh paintings with photographs of monuments: keep the photographs
DETAILS_PHOTOS = frozenset(
    {
        "Louvre_2007_02_24_c",
        "FanoeWindmill",
        "EgeskovSlotSpejling",
        "GizahPyramids",
        "EilanDonanCastle",
        "TowerBridgeLondon",
        "Chenonceau",
        "NDP",
        "Nagoya",
        "TajMahal",
        "TourEiffel",
        "Neuschwanstein",
        "OperaSidney",
    }
)
# photographs among the other packages' pictures, curated by eye where a package mixes them with art
LXQT_PHOTOS = frozenset(
    {
        "Butterfly-Kenneth-Wimer",
        "Valendas",
        "after-the-rain",
        "appleflower",
        "cloud",
        "drop",
        "flowers",
        "fog",
        "this-is-not-windows",
    }
)
SCRIBUS_PHOTOS = frozenset({"nature", "sunset", "pizza", "craigbradney", "teriyaki"})
# Wallpapers are curated by eye: the packages mix photographs with digital art, which no simple
# pixel statistic separates reliably (smooth gradients look like defocused photos).
PLASMA_PHOTOS = frozenset(
    {
        "BytheWater",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Kite",
        "OneStandsOut",
        "Path",
        "summer_1am",
    }
)
LOMIRI_NOT_PHOTOS = frozenset({"umang", "Fossa", "Infinite-Sea", "Painting-Colors", "analogpattern"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 200
TRAIN_MAX_SIDE = 768
EVAL_MAX_SIDE = 1920


@dataclass(frozen=True)
class Candidate:
    """One picture found in a package, and how to get the photograph out of it."""

    source_path: str  # path inside the package (and inside the .rcc bundle after '!')
    data: bytes  # the encoded file
    crop: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) of the photo in the image
    rotate: int = 0  # clockwise degrees that turn the photo upright

    def decode(self) -> Image.Image:
        img = Image.open(io.BytesIO(self.data))
        img.load()
        img = ImageOps.exif_transpose(img)
        if self.crop:
            img = img.crop(self.crop)
        if self.rotate:
            img = img.rotate(-self.rotate, expand=True)
        return img


@dataclass(frozen=True)
class ManifestEntry:
    file: str  # relative to the output folder
    split: str  # "train", "val" or "eval"
    package: str
    source_path: str  # path inside the package (and inside the .rcc bundle after '!')
    sha256: str  # of the written file
    source_sha256: str  # of the original bytes
    width: int
    height: int


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge-colorizer"


def fetch_package(name: str, cache: Path) -> Path:
    """Download and unpack one Debian package into ``cache/pkgs/<name>``; returns the unpacked root."""
    root = cache / "pkgs" / name
    if (root / ".complete").exists():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{name}_*.deb")):
        proc = subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"apt-get download {name} failed ({last}); is the package list current (apt-get update)?"
            )
    deb = sorted(debs.glob(f"{name}_*.deb"))[-1]
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache / "pkgs" if (cache / "pkgs").exists() else None))
    try:
        subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (root / ".complete").touch()
    return root


def photo_rejection(img: Image.Image) -> str | None:
    """Why ``img`` is not a usable colour photo, or None if it is one."""
    if min(img.size) < MIN_SIDE:
        return f"too small ({img.size[0]}x{img.size[1]})"
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if (alpha < 250).mean() > 0.01:
            return "transparent cut-out (drawing or icon)"
    small = np.asarray(img.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.int32)
    spread = (small.max(-1) - small.min(-1)).mean()
    if spread < 12:
        return "grayscale or nearly so"
    n_colors = len(np.unique(small[..., 0] * 65536 + small[..., 1] * 256 + small[..., 2]))
    if n_colors / 4096 < 0.35:
        return "flat colours (drawing)"
    return None


def difference_hash(img: Image.Image, size: int = 8) -> int:
    """64-bit dHash: equal or close for the same picture at another size or compression."""
    g = np.asarray(img.convert("L").resize((size + 1, size), Image.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def _seen(dh: int, hashes: list[int], max_bits: int = 4) -> bool:
    """Whether a picture with difference hash ``dh`` is already among ``hashes`` (same or near duplicate)."""
    return any(bin(dh ^ h).count("1") <= max_bits for h in hashes)


def _files(root: Path, pattern: str, names: frozenset[str] | None = None) -> list[Path]:
    found = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in found if names is None or p.stem in names]


def _from_files(root: Path, files: list[Path]) -> Iterator[Candidate]:
    for p in files:
        yield Candidate(str(p.relative_to(root)), p.read_bytes())


def _iter_gcompris(root: Path) -> Iterator[Candidate]:
    for rcc in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        if rcc.stem in ARTWORK_BUNDLES:
            continue
        for entry in iter_rcc(rcc):
            if not entry.path.lower().endswith(IMAGE_SUFFIXES):
                continue
            if rcc.stem == "details" and Path(entry.path).stem.removesuffix("_background") not in DETAILS_PHOTOS:
                continue
            yield Candidate(f"{rcc.relative_to(root)}!{entry.path}", entry.data)


def _iter_kphotoalbum(root: Path) -> Iterator[Candidate]:
    """The demo album; its index.xml says which scans are stored turned (attribute ``angle``)."""
    demo = root / "usr/share/kphotoalbum/demo"
    index = (demo / "index.xml").read_text(errors="replace") if (demo / "index.xml").exists() else ""
    angles = {}
    for tag in re.findall(r"<image\s[^>]*>", index):
        file, angle = re.search(r'\sfile="([^"]+)"', tag), re.search(r'\sangle="(\d+)"', tag)
        if file and angle:
            angles[file.group(1)] = int(angle.group(1))
    for p in _files(demo, "*"):
        yield Candidate(str(p.relative_to(root)), p.read_bytes(), rotate=angles.get(p.name, 0))


def read_jigzo_puzzle(data: bytes) -> tuple[bytes, tuple[int, int, int, int]]:
    """A jigzo ``.pzl``: a text header, a thumbnail, then texture atlases; the last atlas holds the
    whole picture at the rectangle given by the header's ``image x y w h`` line."""
    header = data[:8192].decode("latin-1")
    rect = re.search(r"\nimage (\d+) (\d+) (\d+) (\d+)", header)
    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff|\x89PNG\r\n", data)]
    if not rect or not data.startswith(b"PzlF") or not starts:
        raise ValueError("not a jigzo puzzle (no PzlF header, image line or embedded picture)")
    x, y, w, h = (int(v) for v in rect.groups())
    return data[starts[-1] :], (x, y, x + w, y + h)


def _iter_jigzo(root: Path) -> Iterator[Candidate]:
    for p in sorted(root.rglob("*.pzl")):
        try:
            atlas, crop = read_jigzo_puzzle(p.read_bytes())
        except ValueError:
            continue
        yield Candidate(str(p.relative_to(root)), atlas, crop=crop)


def _iter_wallpapers(root: Path, package: str) -> Iterator[Candidate]:
    files = _files(root, "**/*")
    if package == "mate-backgrounds":
        files = [p for p in files if "/nature/" in p.as_posix()]
    if package == "plasma-workspace-wallpapers":
        # each wallpaper ships several resolutions under <Name>/contents/images/: keep the largest
        best: dict[str, Path] = {}
        for p in files:
            parts = p.relative_to(root).parts
            key = parts[parts.index("wallpapers") + 1] if "wallpapers" in parts else str(p)
            if "screenshot" in p.name:
                continue
            if key not in best or p.stat().st_size > best[key].stat().st_size:
                best[key] = p
        files = sorted(p for k, p in best.items() if k in PLASMA_PHOTOS)
    if package.startswith("lomiri-wallpapers"):
        files = [p for p in files if p.name.split("_by_")[0] not in LOMIRI_NOT_PHOTOS]
    yield from _from_files(root, files)


# where each package keeps its photographs
PACKAGE_PHOTOS: dict[str, Callable[[Path], Iterator[Candidate]]] = {
    "gcompris-qt-data": _iter_gcompris,
    "kphotoalbum": _iter_kphotoalbum,
    "tuxpaint-data": lambda r: _from_files(
        r, _files(r, "usr/share/tuxpaint/templates/*") + _files(r, "usr/share/tuxpaint/starters/*")
    ),
    # landscapes; the other big pictures there are astronomical images
    "tuxtype-data": lambda r: _from_files(
        r, _files(r, "usr/share/tuxtype/images/kcas*") + _files(r, "usr/share/tuxtype/images/hidden.*")
    ),
    "jigzo-data": _iter_jigzo,
    "lxqt-themes": lambda r: _from_files(r, _files(r, "usr/share/lxqt/wallpapers/*", LXQT_PHOTOS)),
    "palapeli-data": lambda r: _from_files(r, _files(r, "usr/share/palapeli/collection/*")),
    "scribus-template": lambda r: _from_files(r, _files(r, "usr/share/scribus/templates/**/*", SCRIBUS_PHOTOS)),
}


def iter_candidates(root: Path, package: str) -> Iterator[Candidate]:
    if package in PACKAGE_PHOTOS:
        return PACKAGE_PHOTOS[package](root)
    return _iter_wallpapers(root, package)


def _fit(img: Image.Image, max_side: int) -> Image.Image:
    img = img.convert("RGB")
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    return img


def _safe_name(package: str, source_path: str, source_sha256: str) -> str:
    stem = source_path.replace("!", "/").rsplit(".", 1)[0]
    skip = {"usr", "share", "rcc", "resource", "src", "activities", "contents", "images", "gcompris", "wallpapers"}
    name = "__".join([p for p in stem.split("/") if p not in skip][-3:])
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{package}__{name}")[:120]
    return f"{name}__{source_sha256[:8]}.png"


def prepare(
    out: str | Path,
    cache: str | Path | None = None,
    log: Callable[[str], None] = print,
    train_packages: tuple[str, ...] = TRAIN_PACKAGES,
    eval_packages: tuple[str, ...] = EVAL_PACKAGES,
) -> list[ManifestEntry]:
    """Build ``out/train``, ``out/val``, ``out/eval`` and ``out/manifest.json``; returns the manifest entries."""
    out = Path(out)
    cache = Path(cache) if cache else default_cache_dir()
    entries: list[ManifestEntry] = []
    seen_pixels: dict[str, str] = {}
    hashes: dict[str, list[int]] = {split: [] for split in SPLITS}
    rejected = 0
    # evaluation first, so that a picture found in both pools stays out of training
    plan = [("eval", p) for p in eval_packages] + [("train", p) for p in train_packages]
    for pool, package in plan:
        root = fetch_package(package, cache)
        max_side = EVAL_MAX_SIDE if pool == "eval" else TRAIN_MAX_SIDE
        for cand in iter_candidates(root, package):
            try:
                img = cand.decode()
            except Exception as exc:
                log(f"skip {package}:{cand.source_path}: unreadable ({exc})")
                rejected += 1
                continue
            reason = photo_rejection(img)
            if reason:
                rejected += 1
                continue
            source_sha256 = hashlib.sha256(cand.data).hexdigest()
            split = pool
            if (
                pool == "train"
                and int(hashlib.sha256(f"{package}:{cand.source_path}".encode()).hexdigest(), 16) % VAL_EVERY == 0
            ):
                split = "val"
            rgb = _fit(img, max_side)
            pixel_key = hashlib.sha256(np.asarray(_fit(img, 256)).tobytes()).hexdigest()
            if pixel_key in seen_pixels:
                continue  # exact duplicate
            dh = difference_hash(rgb)
            other = next((o for o in SPLITS if o != split and _seen(dh, hashes[o])), None)
            if other:
                log(f"skip {package}:{cand.source_path}: same picture already in the {other} split")
                continue
            if _seen(dh, hashes[split]):
                continue  # near duplicate within the split
            seen_pixels[pixel_key] = cand.source_path
            hashes[split].append(dh)
            rel = f"{split}/{_safe_name(package, cand.source_path, source_sha256)}"
            buf = io.BytesIO()
            rgb.save(buf, format="PNG", optimize=False)
            payload = buf.getvalue()
            _atomic_write(out / rel, payload)
            entries.append(
                ManifestEntry(
                    file=rel,
                    split=split,
                    package=package,
                    source_path=cand.source_path,
                    sha256=hashlib.sha256(payload).hexdigest(),
                    source_sha256=source_sha256,
                    width=rgb.width,
                    height=rgb.height,
                )
            )
    for a in SPLITS:  # guarded above; never expected
        keys = {e.source_sha256 for e in entries if e.split == a}
        if any(e.source_sha256 in keys for e in entries if e.split != a):
            raise RuntimeError(f"an image landed in the {a} split and another one")
    manifest = {"images": [asdict(e) for e in entries], "rejected": rejected}
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    counts = {s: sum(e.split == s for e in entries) for s in SPLITS}
    log(
        f"wrote {counts['train']} training, {counts['val']} validation and {counts['eval']} evaluation photos "
        f"to {out} ({rejected} rejected)"
    )
    return entries


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
