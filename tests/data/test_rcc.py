import pytest

from edge_colorizer.data.rcc import RccError, iter_rcc
from tests.data.rcc_writer import write_rcc

FILES = {
    "a/b/photo.webp": b"RIFF....WEBPfake",
    "a/readme": b"hello",
    "top.txt": b"x" * 1000,
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_round_trip_all_versions(version):
    blob = write_rcc(FILES, compress={"top.txt"}, version=version)
    got = {e.path: e.data for e in iter_rcc(blob)}
    assert got == FILES


def test_reads_from_path(tmp_path):
    p = tmp_path / "x.rcc"
    p.write_bytes(write_rcc({"one.png": b"\x89PNG"}))
    assert [(e.path, e.data) for e in iter_rcc(p)] == [("one.png", b"\x89PNG")]


def test_rejects_non_rcc():
    with pytest.raises(RccError, match="magic"):
        list(iter_rcc(b"PK\x03\x04" + b"\0" * 40))


def test_rejects_truncated():
    blob = write_rcc(FILES)
    with pytest.raises(RccError):
        list(iter_rcc(blob[: len(blob) // 2]))


def test_unknown_version():
    blob = bytearray(write_rcc(FILES))
    blob[4:8] = (9).to_bytes(4, "big")
    with pytest.raises(RccError, match="version 9"):
        list(iter_rcc(bytes(blob)))


def test_real_gcompris_bundle_has_webp_photos(gcompris_root):
    bundle = gcompris_root / "usr/share/gcompris-qt/rcc/explore_farm_animals.rcc"
    entries = [e for e in iter_rcc(bundle) if e.path.endswith(".webp")]
    assert len(entries) >= 9
    assert all(e.data[:4] == b"RIFF" and e.data[8:12] == b"WEBP" for e in entries)
    assert any(e.path.endswith("cow.webp") for e in entries)
