"""worldmodels.atomic: a crash mid-write keeps the previous file and leaves no temp file."""

import pytest

from worldmodels.atomic import atomic_write


def test_write_then_failed_rewrite_keeps_previous(tmp_path):
    target = tmp_path / "sub" / "state.txt"
    atomic_write(target, lambda f: f.write("v1"), text=True)
    assert target.read_text() == "v1"

    def crash(f):
        f.write("half of v2")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(target, crash, text=True)
    assert target.read_text() == "v1"
    assert [p.name for p in target.parent.iterdir()] == ["state.txt"]


def test_binary_mode(tmp_path):
    target = atomic_write(tmp_path / "blob.bin", lambda f: f.write(b"\x00\x01"))
    assert target.read_bytes() == b"\x00\x01"
