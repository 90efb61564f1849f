"""aec.fileio.atomic_output: all or nothing under the final name, never clobbering by accident."""

from __future__ import annotations

import os
import stat

import pytest

from aec.errors import OutputError
from aec.fileio import atomic_output


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("durable", [True, False])
def test_writes_the_file(tmp_path, durable):
    target = tmp_path / "out.bin"
    with atomic_output(target, durable=durable) as f:
        f.write(b"hello ")
        f.write(b"world")
        assert not target.exists()  # nothing under the final name until the end
    assert target.read_bytes() == b"hello world"
    assert listing(tmp_path) == ["out.bin"]


def test_file_mode_follows_umask(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "out.bin"
    with atomic_output(target) as f:
        f.write(b"x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_refuses_existing_target_without_force(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")
    with pytest.raises(OutputError, match="already exists") as err:
        with atomic_output(target) as f:
            f.write(b"new")
    assert str(target) in str(err.value)
    assert target.read_bytes() == b"original"
    assert listing(tmp_path) == ["out.bin"]


def test_refuses_dangling_symlink_without_force(tmp_path):
    target = tmp_path / "out.bin"
    target.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="already exists"):
        with atomic_output(target) as f:
            f.write(b"new")
    assert not (tmp_path / "nowhere").exists()


def test_force_replaces(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"original, and longer than the new content")
    with atomic_output(target, force=True) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["out.bin"]


def test_force_replaces_a_symlink_not_the_file_it_points_to(tmp_path):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep me")
    target = tmp_path / "out.bin"
    target.symlink_to(victim)
    with atomic_output(target, force=True) as f:
        f.write(b"new")
    assert not target.is_symlink()
    assert target.read_bytes() == b"new"
    assert victim.read_bytes() == b"keep me"


def test_file_created_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OutputError, match="already exists"):
        with atomic_output(target) as f:
            f.write(b"mine")
            target.write_bytes(b"someone else's")  # appears between the first check and the rename
    assert target.read_bytes() == b"someone else's"
    assert listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_exception_in_body_leaves_nothing_behind(tmp_path, error):
    target = tmp_path / "out.bin"
    with pytest.raises(type(error)):
        with atomic_output(target) as f:
            f.write(b"partial" * 1000)
            assert len(listing(tmp_path)) == 1  # the temporary file exists while writing
            raise error
    assert not target.exists()
    assert listing(tmp_path) == []


def test_exception_in_body_keeps_existing_file_with_force(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError):
        with atomic_output(target, force=True) as f:
            f.write(b"partial")
            raise RuntimeError("stop")
    assert target.read_bytes() == b"original"
    assert listing(tmp_path) == ["out.bin"]


def test_temporary_file_is_hidden_and_in_the_target_folder(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as f:
        temp = [p for p in tmp_path.iterdir()]
        assert len(temp) == 1
        assert temp[0].name.startswith(".out.bin.") and temp[0].name.endswith(".tmp")
        assert os.path.samefile(temp[0], f.name)
        f.write(b"x")
    assert listing(tmp_path) == ["out.bin"]


def test_missing_folder_raises_output_error(tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "out.bin"
    with pytest.raises(OutputError, match="cannot create output") as err:
        with atomic_output(target) as f:
            f.write(b"x")
    assert str(target) in str(err.value)
    assert not (tmp_path / "no").exists()


def test_target_that_is_a_folder_raises_output_error_with_force(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    with pytest.raises(OutputError, match="cannot write"):
        with atomic_output(target, force=True) as f:
            f.write(b"x")
    assert (target / "inside").read_bytes() == b"x"
    assert listing(tmp_path) == ["folder"]
