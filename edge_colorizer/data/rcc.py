"""Reader for Qt binary resource bundles (``.rcc``), the format GCompris ships its photos in.

Layout (qtbase ``src/corelib/io/qresource.cpp`` / ``tools/rcc``): a header ``qres``, format
version, then offsets of the tree, data and names sections. Tree nodes are 14 bytes (22 from
version 2, with a modification time); names are UTF-16BE with a length and a hash; data blobs
carry a 4-byte size and are optionally zlib (``qCompress``) or zstd compressed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04


class RccError(ValueError):
    """The bytes are not a readable Qt resource bundle."""


@dataclass(frozen=True)
class RccEntry:
    path: str  # "/"-separated path inside the bundle, without a leading slash
    data: bytes


def _u16(buf: bytes, off: int) -> int:
    return struct.unpack_from(">H", buf, off)[0]


def _u32(buf: bytes, off: int) -> int:
    return struct.unpack_from(">I", buf, off)[0]


def _read_name(buf: bytes, names: int, offset: int) -> str:
    start = names + offset
    length = _u16(buf, start)
    raw = buf[start + 6 : start + 6 + 2 * length]
    if len(raw) != 2 * length:
        raise RccError("name runs past the end of the file")
    return raw.decode("utf-16-be")


def _read_blob(buf: bytes, data: int, offset: int, flags: int) -> bytes:
    start = data + offset
    if start + 4 > len(buf):
        raise RccError("data offset past the end of the file")
    size = _u32(buf, start)
    blob = buf[start + 4 : start + 4 + size]
    if len(blob) != size:
        raise RccError("data blob truncated")
    if flags & FLAG_COMPRESSED:
        # qCompress: 4-byte big-endian uncompressed size, then a zlib stream
        try:
            return zlib.decompress(blob[4:])
        except zlib.error as exc:
            raise RccError(f"bad zlib data: {exc}") from exc
    if flags & FLAG_COMPRESSED_ZSTD:
        raise RccError("zstd-compressed resource (not supported without a zstd module)")
    return blob


def iter_rcc(source: bytes | str | Path) -> Iterator[RccEntry]:
    """Yield every file stored in an ``.rcc`` bundle (bytes or a path), depth first."""
    buf = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if len(buf) < 20 or buf[:4] != MAGIC:
        raise RccError("not a Qt resource bundle (missing 'qres' magic)")
    version, tree, data, names = struct.unpack_from(">IIII", buf, 4)
    if version not in (1, 2, 3):
        raise RccError(f"unsupported rcc format version {version}")
    node_size = 14 if version == 1 else 22
    n_bytes = len(buf)
    if max(tree, data, names) >= n_bytes:
        raise RccError("section offset past the end of the file")

    def node(index: int) -> tuple[int, int, int, int]:
        off = tree + index * node_size
        if off + 14 > n_bytes:
            raise RccError("tree node past the end of the file")
        name_off, flags = struct.unpack_from(">IH", buf, off)
        a, b = struct.unpack_from(">II", buf, off + 6)
        return name_off, flags, a, b

    stack: list[tuple[int, str]] = [(0, "")]
    seen = 0
    while stack:
        index, prefix = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise RccError("resource tree does not terminate")
        name_off, flags, a, b = node(index)
        name = "" if index == 0 else _read_name(buf, names, name_off)
        path = f"{prefix}/{name}" if prefix else name
        if flags & FLAG_DIRECTORY:
            count, first = a, b
            for child in reversed(range(first, first + count)):
                stack.append((child, path))
        else:
            # a = country (16 bit) + language (16 bit), b = data offset
            yield RccEntry(path, _read_blob(buf, data, b, flags))
