"""Atomic replacement: the old content survives a failed write, the new one a completed one."""

import pytest

from components.data.atomic import replaced_atomically, write_atomically


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "report.json"
    write_atomically(path, "old")
    write_atomically(path, b"new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "schema.pbtxt"
    write_atomically(path, "old")
    with pytest.raises(OSError), replaced_atomically(path) as partial:
        partial.write_text("half of the n")
        raise OSError("No space left on device")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["schema.pbtxt"]
