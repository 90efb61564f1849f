"""unpack against an attacker and a full disk: nothing lands outside the target, nothing outside is deleted,
and an existing file is only ever replaced by a complete new one, never lost."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import aec
from aec.errors import OutputError
from aec.testing.hostile import raw_names, with_raw_names

AEC = [sys.executable, "-m", "aec"]
FOLDERS = 6
PER_FOLDER = 1000


def limited(max_file_bytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), as a full disk gives ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return apply


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (links not followed) and its bytes."""
    found = {}
    for top, dirs, files in os.walk(folder):
        for name in files:
            path = Path(top) / name
            found[str(path.relative_to(folder))] = b"<link>" if path.is_symlink() else path.read_bytes()
        found.update(
            {str((Path(top) / d).relative_to(folder)): b"<link>" for d in dirs if (Path(top) / d).is_symlink()}
        )
    return found


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


@pytest.fixture(scope="module")
def many(example_images) -> bytes:
    """6,000 digits in six folders s0..s5: enough that unpack is busy for seconds while the attacker works."""
    count = FOLDERS * PER_FOLDER
    names = [f"s{i // PER_FOLDER}/{i % PER_FOLDER:04d}.png" for i in range(count)]
    return aec.encode(np.resize(example_images, (count, 28, 28)), names=names)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_folder_swapped_for_a_symlink_mid_unpack_carries_nothing_outside(tmp_path, many, workers):
    """Another user swaps each subfolder unpack has made (and checked) for a link to a folder of theirs
    that holds files of the same names: no image may land there, and none of theirs may be deleted."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(0, PER_FOLDER, 7):
        (outside / f"{i:04d}.png").write_bytes(b"theirs %d" % i)
    before = tree(outside)
    out = tmp_path / "out"
    done = threading.Event()
    swapped = []

    def attack() -> None:
        while not done.is_set():
            for k in range(FOLDERS):
                sub = out / f"s{k}"
                if k in swapped or not sub.is_dir() or sub.is_symlink():
                    continue
                try:
                    os.rename(sub, out / f"moved-s{k}")
                    os.symlink(outside, sub)
                    swapped.append(k)
                except OSError:
                    pass
            time.sleep(0.001)  # leave the unpack (in this process with workers=1) the interpreter lock

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        aec.unpack(many, out, workers=workers)
    except OutputError as err:  # usually: the swap is seen; if it came too late for that, nothing is lost either
        assert "symbolic link" in str(err) or "not a folder" in str(err), err
    finally:
        done.set()
        attacker.join()
    assert swapped, "the attacker never got in"
    assert tree(outside) == before  # nothing written there, nothing deleted


def test_a_full_disk_with_force_keeps_every_existing_file(tmp_path, example_images):
    names = [f"a/b/{i:02d}.png" for i in range(40)]
    archive = tmp_path / "d.aec"
    archive.write_bytes(aec.encode(example_images[:40], names=names))
    out = tmp_path / "out"
    (out / "a" / "b").mkdir(parents=True)
    mine = {f"a/b/{i:02d}.png": b"mine %d " % i * 10 for i in range(0, 40, 3)}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    for limit in (100, 250):  # nothing fits; some fit (these PNGs are 150-400 bytes)
        done = subprocess.run(
            AEC + ["unpack", str(archive), "-o", str(out), "-f", "-q"],
            capture_output=True,
            text=True,
            preexec_fn=limited(limit),
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "cannot write" in done.stderr
        after = tree(out)
        assert set(after) == set(mine)  # the new files are gone again, the existing ones all there
        for name, data in after.items():
            assert data == mine[name] or is_png(data)  # as it was, or replaced by a complete new image
        if limit == 100:
            assert after == mine


def test_a_file_folder_clash_in_one_file_leaves_an_existing_file_alone(tmp_path, example_images):
    """d.png/y makes a folder d.png where the file d.png is: the write fails, and d.png stays as it was."""
    data = with_raw_names(aec.encode(example_images[:2]), raw_names(["d.png/y", "d"]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "d.png").write_bytes(b"mine")
    with pytest.raises(OutputError, match="d.png"):
        aec.unpack(data, out, force=True)
    assert tree(out) == {"d.png": b"mine"}
    for names in (["d.png/y", "d"], ["d", "d.png/y"]):  # and with nothing there, nothing is left
        data = with_raw_names(aec.encode(example_images[:2]), raw_names(names))
        with pytest.raises(OutputError, match="d.png"):
            aec.unpack(data, tmp_path / "new")
        assert not (tmp_path / "new").exists()


def test_npy_with_labels_checks_both_files_before_writing_either(tmp_path, example_images):
    np.savez(tmp_path / "d.npz", images=example_images, labels=np.arange(48) % 10)
    archive = tmp_path / "d.aec"
    aec.pack([tmp_path / "d.npz"], archive)
    (tmp_path / "out-labels.npy").write_bytes(b"mine")
    with pytest.raises(OutputError, match="out-labels.npy"):
        aec.unpack(archive, tmp_path / "out.npy", format="npy")
    assert not (tmp_path / "out.npy").exists()
    assert (tmp_path / "out-labels.npy").read_bytes() == b"mine"
    result = aec.unpack(archive, tmp_path / "out.npy", format="npy", force=True)
    assert result.images == 48 and np.load(tmp_path / "out-labels.npy").tolist() == (np.arange(48) % 10).tolist()


def test_two_names_that_reach_one_file_through_a_linked_folder_fail_with_force(tmp_path, example_images):
    """alias -> real inside the target: alias/x.png and real/x.png are one file; -f must not keep only one image."""
    data = aec.encode(example_images[:2], names=["alias/x.png", "real/x.png"])
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    os.symlink("real", out / "alias")
    with pytest.raises(OutputError, match="alias"):
        aec.unpack(data, out, force=True)
    assert sorted(tree(out)) == ["alias"]  # the link stays, the file it would have shared is gone again


def test_two_names_that_reach_one_file_on_a_case_insensitive_file_system_fail_with_force(
    tmp_path, example_images, monkeypatch
):
    """A.png and a.png are one file where case does not count (macOS, Windows shares): with -f the second
    would replace the first and one image would be lost. Simulated here by folding the names as such a
    file system does, at the one place unpack writes a file."""
    import aec.unpacking as unpacking

    for writer in ("write_file_at", "write_new_file"):  # the second: how the files were written before
        if hasattr(unpacking, writer):
            real = getattr(unpacking, writer)

            def folded(where, *args, real=real, **kwargs):
                if isinstance(where, int):
                    return real(where, args[0].lower(), *args[1:], **kwargs)
                return real(os.path.join(os.path.dirname(where), os.path.basename(where).lower()), *args, **kwargs)

            monkeypatch.setattr(unpacking, writer, folded)
    data = with_raw_names(aec.encode(example_images[:3]), raw_names(["A.png", "a.png", "b.png"]))
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="two stored names"):
        aec.unpack(data, out, force=True)
    assert tree(out) == {}
    monkeypatch.undo()
    # Replacing files frees their inodes for the next files at once: that is not a name reaching a file twice.
    names = [f"{i:04d}.png" for i in range(1500)]
    data = aec.encode(np.resize(example_images, (1500, 28, 28)), names=names)
    for workers in (1, 2):
        aec.unpack(data, out, workers=workers)
        assert aec.unpack(data, out, workers=workers, force=True).images == 1500
        shutil.rmtree(out)


def test_a_symlinked_target_root_is_refused(tmp_path, example_images):
    """The root is opened once without following a link, and everything is written below that folder."""
    data = aec.encode(example_images[:2])
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "link")
    with pytest.raises(OutputError, match="symbolic link"):
        aec.unpack(data, tmp_path / "link")
    assert list((tmp_path / "real").iterdir()) == []
    assert aec.unpack(data, tmp_path / "link" / "inside").images == 2  # a link above the root is the user's choice


def test_many_folders_from_few_images_are_refused_and_removed(tmp_path, example_images):
    """A few bytes of names can ask for thousands of nested folders: they are capped by the image count."""
    deep = ["/".join([c] * 600) + "/x" for c in "abcdefgh"]  # 4,792 folders; not deeper: rmtree recurses
    data = with_raw_names(aec.encode(example_images[:8]), raw_names(deep))
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="folders"):
        aec.unpack(data, out)
    assert not out.exists()
