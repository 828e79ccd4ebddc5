import os

import pytest

from edge_colorizer.io import sweep_target
from runtimes.artifacts import ExportError, artifact_metadata, staged


def test_staged_file_is_renamed_into_place_with_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        with staged(tmp_path / "sub" / "a.onnx") as tmp:
            assert tmp.parent == tmp_path / "sub" and tmp.name.startswith(".a.onnx.")
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "a.onnx").read_bytes() == b"x"
    assert oct((tmp_path / "sub" / "a.onnx").stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.onnx"]


def test_an_existing_artifact_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "a.onnx"
    out.write_bytes(b"old")
    with pytest.raises(ExportError, match="already exists; pass --force"):
        with staged(out) as tmp:
            tmp.write_bytes(b"new")
    assert out.read_bytes() == b"old"
    with staged(out, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"


def test_a_folder_artifact_replaces_the_old_folder_whole(tmp_path):
    out = tmp_path / "m_openvino"
    for content in (b"one", b"two"):
        with staged(out, force=True, folder=True) as tmp:
            (tmp / "model.xml").write_bytes(content)
            if content == b"one":
                (tmp / "stale.bin").write_bytes(b"")
    assert sorted(p.name for p in out.iterdir()) == ["model.xml"] and (out / "model.xml").read_bytes() == b"two"
    assert oct(out.stat().st_mode & 0o700) == oct(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_openvino"]


def test_a_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with staged(tmp_path / "a.onnx") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        with staged(tmp_path / "b_openvino", folder=True) as tmp:
            (tmp / "model.xml").write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_path_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="is not a folder") as info:
        with staged(tmp_path / "file" / "sub" / "a.onnx"):
            pass
    assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(ExportError, match="permission denied"):
        with staged(folder / "a.onnx"):
            pass


def test_temporaries_of_killed_exporters_are_swept(tmp_path):
    out = tmp_path / "a.onnx"
    dead = tmp_path / ".a.onnx.edge-colorizer-999999999-0123abcd.tmp.onnx"  # no such pid
    dead_folder = tmp_path / ".a.onnx.edge-colorizer-999999998-0123abcd.tmp"  # a folder artifact's
    alive = tmp_path / f".a.onnx.edge-colorizer-{os.getpid()}-0123abcd.tmp.onnx"
    other = tmp_path / ".b.onnx.edge-colorizer-999999999-0123abcd.tmp.onnx"
    for p in (dead, alive, other):
        p.write_bytes(b"")
    (dead_folder / "sub").mkdir(parents=True)
    sweep_target(out)
    assert not dead.exists() and not dead_folder.exists() and alive.exists() and other.exists()


def test_force_replaces_only_the_same_kind_and_a_name_must_be_usable(tmp_path):
    folder = tmp_path / "a.onnx"
    folder.mkdir()
    with pytest.raises(ExportError, match="exists and is not a file as the artifact is"):
        with staged(folder, force=True):
            pass
    (tmp_path / "b_openvino").write_bytes(b"")
    with pytest.raises(ExportError, match="exists and is not a folder as the artifact is"):
        with staged(tmp_path / "b_openvino", force=True, folder=True):
            pass
    for bad, reason in (("\udcff.onnx", "not UTF-8"), ("x" * 251 + ".onnx", "longer than 255 bytes")):
        with pytest.raises(ExportError, match=reason):
            with staged(tmp_path / bad):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b_openvino"]


def test_metadata_is_strings_naming_the_format(tiny):
    meta = artifact_metadata(tiny, "onnx", "fp16", "tiny", None, extra="1")
    assert meta["format"] == "onnx" and meta["precision"] == "fp16" and meta["extra"] == "1"
    assert all(isinstance(v, str) for v in meta.values()) and meta["checkpoint_sha256"] == ""
