"""A minimal writer of Qt .rcc bundles (format version 2), for testing the reader on known content."""

from __future__ import annotations

import struct
import zlib


def write_rcc(files: dict[str, bytes], compress: set[str] = frozenset(), version: int = 2) -> bytes:
    """Bundle ``{"dir/name.ext": bytes}`` into .rcc bytes; paths in ``compress`` are qCompress-ed."""
    # build a directory tree
    tree: dict = {}
    for path, payload in files.items():
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = (path, payload)

    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_offsets[name]

    data = bytearray()
    # breadth-first layout: children of a directory are contiguous
    nodes: list[tuple] = [("", tree)]
    records: list[bytes] = []
    i = 0
    while i < len(nodes):
        name, content = nodes[i]
        n_off = 0 if i == 0 else name_offset(name)
        if isinstance(content, dict):
            children = sorted(content.items())
            first = len(nodes)
            nodes.extend(children)
            rec = struct.pack(">IHII", n_off, 0x02, len(children), first)
        else:
            path, payload = content
            flags = 0
            blob = payload
            if path in compress:
                flags = 0x01
                blob = struct.pack(">I", len(payload)) + zlib.compress(payload)
            d_off = len(data)
            data.extend(struct.pack(">I", len(blob)) + blob)
            rec = struct.pack(">IHHHI", n_off, flags, 0, 0, d_off)
        if version >= 2:
            rec += struct.pack(">Q", 0)
        records.append(rec)
        i += 1
    header_size = 20 if version < 3 else 24
    tree_bytes = b"".join(records)
    tree_off = header_size
    data_off = tree_off + len(tree_bytes)
    names_off = data_off + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree_bytes + bytes(data) + bytes(names)
