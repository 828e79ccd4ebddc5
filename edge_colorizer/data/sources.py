"""Builds the offline photo pools from Debian packages: training from GCompris, evaluation from wallpapers.

Each package is fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache; nothing
is installed system-wide. Only real colour photos are kept (no drawings, icons, transparent
cut-outs or grayscale images), exact and near duplicates are dropped, and no image may appear in
both splits. A JSON manifest records source package, path, sha256, size and split.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge_colorizer.data.rcc import iter_rcc

TRAIN_PACKAGES = ("gcompris-qt-data",)
EVAL_PACKAGES = (
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)
# GCompris bundles of artwork rather than photographs (paintings, their details, painted backgrounds)
ARTWORK_BUNDLES = frozenset({"paintings", "details", "babyshapes"})
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
class ManifestEntry:
    file: str  # relative to the output folder
    split: str  # "train" or "eval"
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


def _iter_gcompris(root: Path) -> Iterator[tuple[str, bytes]]:
    for rcc in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        if rcc.stem in ARTWORK_BUNDLES:
            continue
        for entry in iter_rcc(rcc):
            if entry.path.lower().endswith(IMAGE_SUFFIXES):
                yield f"{rcc.relative_to(root)}!{entry.path}", entry.data


def _iter_wallpapers(root: Path, package: str) -> Iterator[tuple[str, bytes]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
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
    for p in files:
        yield str(p.relative_to(root)), p.read_bytes()


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
    """Build ``out/train`` and ``out/eval`` and ``out/manifest.json``; returns the manifest entries."""
    out = Path(out)
    cache = Path(cache) if cache else default_cache_dir()
    entries: list[ManifestEntry] = []
    seen_pixels: dict[str, str] = {}
    hashes: dict[str, list[int]] = {"train": [], "eval": []}
    rejected = 0
    # evaluation first, so that a picture found in both pools stays out of training
    plan = [("eval", p) for p in eval_packages] + [("train", p) for p in train_packages]
    for split, package in plan:
        root = fetch_package(package, cache)
        source = _iter_gcompris(root) if package == "gcompris-qt-data" else _iter_wallpapers(root, package)
        max_side = EVAL_MAX_SIDE if split == "eval" else TRAIN_MAX_SIDE
        (out / split).mkdir(parents=True, exist_ok=True)
        for source_path, data in source:
            try:
                img = Image.open(io.BytesIO(data))
                img.load()
            except Exception as exc:
                log(f"skip {package}:{source_path}: unreadable ({exc})")
                rejected += 1
                continue
            reason = photo_rejection(img)
            if reason:
                rejected += 1
                continue
            rgb = _fit(img, max_side)
            pixel_key = hashlib.sha256(np.asarray(_fit(img, 256)).tobytes()).hexdigest()
            if pixel_key in seen_pixels:
                continue  # exact duplicate
            dh = difference_hash(rgb)
            other = "eval" if split == "train" else "train"
            if any(bin(dh ^ h).count("1") <= 4 for h in hashes[other]):
                log(f"skip {package}:{source_path}: same picture already in the {other} split")
                continue
            if any(bin(dh ^ h).count("1") <= 4 for h in hashes[split]):
                continue  # near duplicate within the split
            seen_pixels[pixel_key] = source_path
            hashes[split].append(dh)
            source_sha256 = hashlib.sha256(data).hexdigest()
            rel = f"{split}/{_safe_name(package, source_path, source_sha256)}"
            buf = io.BytesIO()
            rgb.save(buf, format="PNG", optimize=False)
            payload = buf.getvalue()
            _atomic_write(out / rel, payload)
            entries.append(
                ManifestEntry(
                    file=rel,
                    split=split,
                    package=package,
                    source_path=source_path,
                    sha256=hashlib.sha256(payload).hexdigest(),
                    source_sha256=source_sha256,
                    width=rgb.width,
                    height=rgb.height,
                )
            )
    train_keys = {e.source_sha256 for e in entries if e.split == "train"}
    if any(e.source_sha256 in train_keys for e in entries if e.split == "eval"):
        raise RuntimeError("an image landed in both splits")  # guarded above; never expected
    manifest = {"images": [asdict(e) for e in entries], "rejected": rejected}
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    counts = {s: sum(e.split == s for e in entries) for s in ("train", "eval")}
    log(f"wrote {counts['train']} training and {counts['eval']} evaluation photos to {out} ({rejected} rejected)")
    return entries


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
