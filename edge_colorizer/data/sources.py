"""Builds the offline photo pools from Debian packages: training (and validation) photos from
GCompris and eight other packages that ship photographs, evaluation photos from wallpaper packages,
and ``cutouts/``: photographs of single objects on a transparent background (Tux Paint's photo stamps,
GCompris's hands), curated by eye, that training pastes onto its crops for object colours.

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
CUTOUT_PACKAGES = ("tuxpaint-stamps-default", "gcompris-qt-data")
SPLITS = ("train", "val", "eval")
CUTOUTS = "cutouts"  # the cut-out pool's folder and manifest split
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
# Tux Paint's stamps that are photographs (the others are drawings, clip-art, letters, signs and planets),
# by path under usr/share/tuxpaint/stamps/, chosen by eye from contact sheets of every transparent stamp
STAMP_PHOTOS = frozenset(
    {
        "animals/amphibians/frog",
        "animals/amphibians/frog-1",
        "animals/birds/albino_peahen",
        "animals/birds/blackbird",
        "animals/birds/chicken_profile",
        "animals/birds/crow",
        "animals/birds/crowned_crane",
        "animals/birds/cuckoo",
        "animals/birds/drake",
        "animals/birds/duck",
        "animals/birds/gander",
        "animals/birds/guineafowl",
        "animals/birds/helmeted_guineafowl",
        "animals/birds/hen",
        "animals/birds/heron_greatblue",
        "animals/birds/heron_greatblue_flying",
        "animals/birds/lark",
        "animals/birds/little-penguin",
        "animals/birds/magellanic_penguin",
        "animals/birds/nandou",
        "animals/birds/ostrich",
        "animals/birds/owl",
        "animals/birds/peacock",
        "animals/birds/pelican",
        "animals/birds/penguin",
        "animals/birds/pigeon",
        "animals/birds/pink_flamingo",
        "animals/birds/rooster",
        "animals/birds/seagull",
        "animals/birds/tucan",
        "animals/birds/turkey",
        "animals/birds/vulture",
        "animals/fish/bluegroper",
        "animals/fish/butterflyfish",
        "animals/fish/clownfish",
        "animals/fish/coraltrout",
        "animals/fish/dolphinfish",
        "animals/fish/lionfish",
        "animals/fish/lobster",
        "animals/fish/seahorse",
        "animals/insects/Brown_slug",
        "animals/insects/Woodlouse",
        "animals/insects/fly",
        "animals/insects/grasshopper",
        "animals/insects/hornet",
        "animals/insects/hoverfly",
        "animals/insects/mantis",
        "animals/insects/xanthia",
        "animals/lizards/iguana",
        "animals/mammals/apes/chimp",
        "animals/mammals/apes/gorilla",
        "animals/mammals/apes/tamarin_emperor",
        "animals/mammals/aquatic/dolphin",
        "animals/mammals/aquatic/orca",
        "animals/mammals/aquatic/otter",
        "animals/mammals/aquatic/sea_lion",
        "animals/mammals/aquatic/whale",
        "animals/mammals/bears/bear",
        "animals/mammals/bears/european-bear",
        "animals/mammals/bears/toys/edward_bear",
        "animals/mammals/bovines/bison",
        "animals/mammals/bovines/bull",
        "animals/mammals/bovines/cow",
        "animals/mammals/bovines/cow_white",
        "animals/mammals/bovines/gnu-baby",
        "animals/mammals/bovines/gnu-baby-stand",
        "animals/mammals/bovines/gnu-sitting",
        "animals/mammals/bovines/gnu-stand",
        "animals/mammals/bovines/goat",
        "animals/mammals/bovines/indian_blackbuck",
        "animals/mammals/bovines/mountaingoat",
        "animals/mammals/bovines/ram",
        "animals/mammals/bovines/sheep",
        "animals/mammals/bovines/sheep_lamb",
        "animals/mammals/bovines/yak",
        "animals/mammals/bovines/zebu",
        "animals/mammals/camel/camel",
        "animals/mammals/camel/dromedary",
        "animals/mammals/cats/lion-2",
        "animals/mammals/cats/tiger",
        "animals/mammals/cats/tiger_sumatran",
        "animals/mammals/deer/caribou",
        "animals/mammals/deer/deer",
        "animals/mammals/deer/doe",
        "animals/mammals/deer/wapiti",
        "animals/mammals/dogs/dingo",
        "animals/mammals/dogs/dog",
        "animals/mammals/dogs/fox",
        "animals/mammals/elephant",
        "animals/mammals/equines/donkey",
        "animals/mammals/equines/donkey_eating",
        "animals/mammals/equines/horse",
        "animals/mammals/equines/zebra",
        "animals/mammals/ferret",
        "animals/mammals/giraffe",
        "animals/mammals/hippopotamus",
        "animals/mammals/pig",
        "animals/mammals/pig_golden",
        "animals/mammals/pig_golden2",
        "animals/mammals/rabbit_little",
        "animals/mammals/rhino_black",
        "animals/mammals/rodents/beaver",
        "animals/mammals/rodents/capybara",
        "animals/mammals/rodents/marmot",
        "animals/mammals/rodents/mouse",
        "animals/mammals/rodents/rabbit",
        "animals/mammals/rodents/rabbit-2",
        "animals/mammals/rodents/rat",
        "animals/mammals/rodents/squirrel",
        "animals/mammals/wildboar",
        "animals/marsupials/kangaroo",
        "animals/marsupials/koala",
        "animals/marsupials/wombat",
        "animals/shellfish/abalone",
        "animals/shellfish/murray-mussel",
        "food/fruit/Apricot_whole",
        "food/fruit/Cherry_Stella",
        "food/fruit/Strawberry2",
        "food/fruit/apricot",
        "food/fruit/avocado",
        "food/fruit/cherimoya",
        "food/fruit/kiwi",
        "food/fruit/mandarine",
        "food/fruit/orange_seville",
        "food/spices/ginger",
        "food/vegetables/broccoli",
        "food/vegetables/corn",
        "hobbies/binoculars",
        "hobbies/camera_35mm",
        "hobbies/music/brass/trumpet",
        "hobbies/music/percussion/cymbal_crash",
        "hobbies/music/percussion/drum_tomtom_floor",
        "hobbies/music/percussion/drumkit",
        "hobbies/music/string/cello",
        "hobbies/music/string/guitar2",
        "hobbies/music/string/guitar_classical",
        "hobbies/music/string/guitar_electric",
        "hobbies/music/string/guitar_electric_bass",
        "hobbies/music/string/violin",
        "household/Lightbulb",
        "household/cylinder",
        "household/dishes/pitcher_small",
        "household/home_compost_bin",
        "household/kettle",
        "household/toilet",
        "household/tools/cementmixer",
        "household/tools/saw",
        "household/tools/spade",
        "household/tools/toolbox",
        "household/wheelie_bin",
        "medical/bandage_adhesive",
        "medical/mercurythermometer",
        "medical/stethoscope",
        "medical/syringe",
        "military/final-roll-call",
        "military/fireman240a",
        "military/paratrooper",
        "military/vehicles/bradley",
        "military/vehicles/bradley_mirror",
        "military/vehicles/f22_raptor",
        "military/vehicles/infantry-stryker",
        "military/vehicles/ww2_german_gun",
        "naturalforces/explosion",
        "naturalforces/fire",
        "people/fireman200b",
        "people/toys/grannysmith",
        "plants/eggplant",
        "plants/flowers/adeenia",
        "plants/flowers/anemone_red",
        "plants/flowers/anthoorium",
        "plants/flowers/bolsom",
        "plants/flowers/chemparathi",
        "plants/flowers/daffodil",
        "plants/flowers/flower1",
        "plants/flowers/flower10",
        "plants/flowers/flower2",
        "plants/flowers/flower3",
        "plants/flowers/flower4",
        "plants/flowers/flower5",
        "plants/flowers/flower6",
        "plants/flowers/flower7",
        "plants/flowers/flower8",
        "plants/flowers/flower9",
        "plants/flowers/iris",
        "plants/flowers/marigold",
        "plants/flowers/pigface",
        "plants/flowers/plastic/chuvanna_plastic_poo",
        "plants/flowers/red-gazania",
        "plants/flowers/rose",
        "plants/flowers/whitestar-petunia",
        "plants/lavender",
        "plants/lettuce_bolted",
        "plants/mushrooms/cep",
        "plants/mushrooms/cep-1",
        "plants/mushrooms/cep-2",
        "plants/thyme",
        "plants/trees/holm_oak",
        "plants/trees/liberia-palm",
        "plants/trees/rambutan",
        "plants/trees/tree336",
        "seasonal/candle",
        "seasonal/christmas/Candy_cane_photo_1",
        "seasonal/christmas/Candy_cane_photo_2",
        "seasonal/christmas/Christmas_Tree_photo",
        "seasonal/christmas/Christmas_pudding",
        "seasonal/christmas/German_Christmas_toy",
        "seasonal/christmas/Mince_Pie",
        "seasonal/christmas/Roast_turkey",
        "seasonal/halloween/grave-a",
        "seasonal/halloween/grave-c",
        "seasonal/halloween/grave-d",
        "seasonal/halloween/grave-e",
        "seasonal/halloween/grave-f",
        "seasonal/halloween/grave-g",
        "seasonal/halloween/grave-h",
        "seasonal/halloween/grave-i",
        "space/apollo_lander",
        "space/spacewalk",
        "space/voyager2",
        "sports/basketball",
        "sports/tennis_ball",
        "symbols/money/canadian/coins/001penny",
        "symbols/money/canadian/coins/005nickel",
        "symbols/money/canadian/coins/010dime",
        "symbols/money/canadian/coins/025quarter",
        "symbols/money/canadian/coins/100loonie",
        "symbols/money/canadian/coins/200toonie",
        "symbols/money/euro/coins/005",
        "symbols/money/euro/coins/020",
        "symbols/money/euro/coins/050",
        "symbols/money/euro/coins/100",
        "symbols/money/euro/coins/200",
        "symbols/money/japanese/yen001",
        "symbols/money/japanese/yen005",
        "symbols/money/japanese/yen010",
        "symbols/money/japanese/yen050",
        "symbols/money/japanese/yen500",
        "symbols/money/us/coins/050kennedy-halfdollar",
        "town/monuments/inukshuk-photo",
        "town/roadsigns/railroad_crossing",
        "town/roadsigns/traffic_cone",
        "vehicles/7spoke256",
        "vehicles/auto/truck",
        "vehicles/construction/dumper",
        "vehicles/construction/dumper_mirror",
        "vehicles/cycle/pink_tricycle",
        "vehicles/emergency/firetruck",
        "vehicles/flight/balloon360",
        "vehicles/flight/planes/747",
        "vehicles/garbagetruck",
        "vehicles/masstransit/green_korean_bus",
        "vehicles/race/indycar",
        "vehicles/ship/walnutBoat",
        "vehicles/wheel_tractor",
    }
)
# GCompris's left/right activity: photographs of hands, palm and back
GCOMPRIS_CUTOUTS = frozenset(
    {
        "main_droite_dessus_0",
        "main_droite_paume_0",
        "main_gauche_dessus_0",
        "main_gauche_paume_0",
        "poing_droit_dessus_0",
        "poing_droit_paume_0",
        "poing_gauche_dessus_0",
        "poing_gauche_paume_0",
    }
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 200
TRAIN_MAX_SIDE = 768
CUTOUT_MAX_SIDE = 512
CUTOUT_MIN_SIDE = 64
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


def cutout_rejection(img: Image.Image) -> str | None:
    """Why ``img`` is not a usable cut-out (an object on a transparent background), or None."""
    if min(img.size) < CUTOUT_MIN_SIDE:
        return f"too small ({img.size[0]}x{img.size[1]})"
    if not (img.mode in ("RGBA", "LA", "PA", "P") or "transparency" in img.info):
        return "no transparency"
    alpha = np.asarray(img.convert("RGBA"))[..., 3]
    shown = (alpha >= 128).mean()
    if not 0.05 <= shown <= 0.95:
        return f"{shown:.0%} opaque (not an object on a transparent background)"
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


def _iter_stamps(root: Path) -> Iterator[Candidate]:
    stamps = root / "usr/share/tuxpaint/stamps"
    for p in _files(stamps, "**/*"):
        if p.relative_to(stamps).with_suffix("").as_posix() in STAMP_PHOTOS:
            yield Candidate(str(p.relative_to(root)), p.read_bytes())


def _iter_gcompris_cutouts(root: Path) -> Iterator[Candidate]:
    rcc = root / "usr/share/gcompris-qt/rcc/leftright.rcc"
    if rcc.exists():
        for entry in iter_rcc(rcc):
            if Path(entry.path).stem in GCOMPRIS_CUTOUTS:
                yield Candidate(f"{rcc.relative_to(root)}!{entry.path}", entry.data)


# where each package keeps its photographic cut-outs
PACKAGE_CUTOUTS: dict[str, Callable[[Path], Iterator[Candidate]]] = {
    "tuxpaint-stamps-default": _iter_stamps,
    "gcompris-qt-data": _iter_gcompris_cutouts,
}


def iter_candidates(root: Path, package: str) -> Iterator[Candidate]:
    if package in PACKAGE_PHOTOS:
        return PACKAGE_PHOTOS[package](root)
    return _iter_wallpapers(root, package)


def _fit(img: Image.Image, max_side: int, mode: str = "RGB") -> Image.Image:
    """``img`` in ``mode``, shrunk (never enlarged) so that its long side is at most ``max_side``."""
    img = img.convert(mode)
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
    cutout_packages: tuple[str, ...] = CUTOUT_PACKAGES,
    on_package: Callable[[str, int], None] | None = None,
) -> list[ManifestEntry]:
    """Build ``out/train``, ``out/val``, ``out/eval``, ``out/cutouts`` and ``out/manifest.json``; returns the
    manifest entries. ``on_package(name, total)`` is called as each package is started (a progress bar)."""
    total = len(eval_packages) + len(train_packages) + len(cutout_packages)
    started = on_package or (lambda name, total: None)
    out = Path(out)
    cache = Path(cache) if cache else default_cache_dir()
    entries: list[ManifestEntry] = []
    seen_pixels: dict[str, str] = {}
    hashes: dict[str, list[int]] = {split: [] for split in SPLITS}
    rejected = 0
    # evaluation first, so that a picture found in both pools stays out of training
    plan = [("eval", p) for p in eval_packages] + [("train", p) for p in train_packages]
    for pool, package in plan:
        started(package, total)
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
    entries += _prepare_cutouts(out, cache, cutout_packages, log, lambda name: started(name, total))
    for a in SPLITS:  # guarded above; never expected
        keys = {e.source_sha256 for e in entries if e.split == a}
        if any(e.source_sha256 in keys for e in entries if e.split != a):
            raise RuntimeError(f"an image landed in the {a} split and another one")
    manifest = {"images": [asdict(e) for e in entries], "rejected": rejected}
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    counts = {s: sum(e.split == s for e in entries) for s in (*SPLITS, CUTOUTS)}
    log(
        f"wrote {counts['train']} training, {counts['val']} validation and {counts['eval']} evaluation photos "
        f"and {counts[CUTOUTS]} cut-outs to {out} ({rejected} rejected)"
    )
    return entries


def _prepare_cutouts(
    out: Path, cache: Path, packages: tuple[str, ...], log, started: Callable[[str], None] = lambda name: None
) -> list[ManifestEntry]:
    """``out/cutouts``: the curated photographic cut-outs as RGBA PNGs (long side at most CUTOUT_MAX_SIDE),
    exact duplicates dropped."""
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for package in packages:
        started(package)
        root = fetch_package(package, cache)
        for cand in PACKAGE_CUTOUTS[package](root):
            try:
                img = cand.decode()
            except Exception as exc:
                log(f"skip {package}:{cand.source_path}: unreadable ({exc})")
                continue
            reason = cutout_rejection(img)
            if reason:
                log(f"skip {package}:{cand.source_path}: {reason}")
                continue
            rgba = _fit(img, CUTOUT_MAX_SIDE, "RGBA")
            key = hashlib.sha256(rgba.tobytes()).hexdigest()
            if key in seen:
                continue
            seen.add(key)
            source_sha256 = hashlib.sha256(cand.data).hexdigest()
            buf = io.BytesIO()
            rgba.save(buf, format="PNG")
            payload = buf.getvalue()
            rel = f"{CUTOUTS}/{_safe_name(package, cand.source_path, source_sha256)}"
            _atomic_write(out / rel, payload)
            entries.append(
                ManifestEntry(
                    rel,
                    CUTOUTS,
                    package,
                    cand.source_path,
                    hashlib.sha256(payload).hexdigest(),
                    source_sha256,
                    rgba.width,
                    rgba.height,
                )
            )
    return entries


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
