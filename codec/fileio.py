"""Atomic output: write to a temporary name in the target folder, then rename.

A killed process leaves at most a hidden temporary file, never a partial
file under the final name; nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import OutputError
from .name_rules import check_name


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a file to write; on success it appears at `path` in one step.

    Without `force`, an existing `path` is an error (checked first, and again
    at the rename, which is done with link() so that a file created meanwhile
    is not clobbered either). `durable` fsyncs before the rename.
    """
    path = Path(path)
    if not force and (path.exists() or path.is_symlink()):
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    folder = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OutputError(f"{path}: cannot create output ({err.strerror or err})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{path}: already exists (use --force to overwrite)") from None
            except OSError:  # file systems without hard links: check-then-rename
                if path.exists():
                    raise OutputError(f"{path}: already exists (use --force to overwrite)") from None
                os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_UMASK = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK


# --- many small files -------------------------------------------------------
# unpack writes thousands of PNGs, so the per-file cost of atomicity matters.
# Measured here (ext4, 300-byte files, per file): plain create 23 us; a
# temporary name then renameat2(RENAME_NOREPLACE) 45 us; O_TMPFILE + linkat
# 180-370 us (it slows as the folder fills); mkstemp + link + unlink + chmod
# far more. renameat2 is not in Python's os module, hence ctypes; where it is
# missing (not Linux, old glibc, a file system that refuses the flag) the
# same no-clobber rename is done with link() + unlink(). Everything is done
# relative to an open folder (dir_fd), so a folder swapped for a symbolic
# link after it was opened cannot redirect the file.
_RENAME_NOREPLACE = 1
_renameat2 = None
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _rename_no_replace(folder: int, src: str, dst: str) -> None:
    """Rename src to dst in `folder` in one step, failing with FileExistsError if dst exists (even as a link)."""
    global _renameat2
    if _renameat2 is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = (libc.renameat2, ctypes)
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2:
        call, ctypes = _renameat2
        if call(folder, os.fsencode(src), folder, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), dst)
    os.link(src, dst, src_dir_fd=folder, dst_dir_fd=folder)  # fails if dst exists
    os.unlink(src, dir_fd=folder)


def file_key(status: os.stat_result) -> int:
    """A file's identity (device and inode) as one 64-bit number above 1 (0 and 1 are left for "none" and "unknown")."""
    key = (status.st_ino ^ (status.st_dev * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF
    return key if key > 1 else key + 2


def write_file_at(folder: int, base: str, data: bytes, force: bool, shown: str) -> tuple[int, int, int, int]:
    """Write `data` as `base` in the open folder `folder`, appearing whole or not at all. An existing `base`
    is an error unless `force`; then it is replaced in one rename by the complete new file, and never
    removed otherwise. `shown`: the path for messages.

    Returns (key of the new file, monotonic ns once it had that key, key of the file it replaced or 0,
    monotonic ns when that one was seen or 0). The times order a replaced file against files written
    elsewhere: a freed inode is soon given to a new file, so a key alone cannot tell which came first.

    Not fsynced: a crash of the machine (not of aec) may lose recent files, as with cp or tar. A killed
    aec leaves at most a hidden .NAME.PID.tmp.
    """
    tmp, replaced, seen_ns = None, 0, 0
    try:
        try:
            fd = os.open(f".{base}.{os.getpid()}.tmp", _TEMP_FLAGS, 0o666, dir_fd=folder)
            tmp = f".{base}.{os.getpid()}.tmp"
        except FileExistsError:  # left by a killed run with this process id: keep it, use another name
            name = f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            fd = os.open(name, _TEMP_FLAGS, 0o666, dir_fd=folder)
            tmp = name
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            key, made_ns = file_key(os.fstat(fd)), time.monotonic_ns()
        finally:
            os.close(fd)
        try:
            _rename_no_replace(folder, tmp, base)
        except FileExistsError:
            if not force:
                raise
            old = os.stat(base, dir_fd=folder, follow_symlinks=False)
            if stat.S_ISDIR(old.st_mode):
                raise OutputError(f"{shown}: cannot write (a folder is in the way)") from None
            replaced, seen_ns = file_key(old), time.monotonic_ns()
            os.rename(tmp, base, src_dir_fd=folder, dst_dir_fd=folder)
        tmp = None
    except FileExistsError:
        raise OutputError(f"{shown}: already exists (use --force to overwrite)") from None
    except OSError as err:
        raise OutputError(f"{shown}: cannot write ({err.strerror or err})") from None
    finally:
        if tmp is not None:  # only a temporary file this call made
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
    return key, made_ns, replaced, seen_ns


# --- where outputs go -----------------------------------------------------------


def safe_output_path(out_dir: Path, name: str) -> Path:
    """out_dir / name, refusing any name that could land outside out_dir."""
    problem = check_name(name)
    if problem:
        raise OutputError(f"{name!r}: refusing to write ({problem})")
    target = out_dir / name
    try:
        root = out_dir.resolve()
        # resolve() follows symlinks already in the target folder: a link there
        # that points elsewhere must not carry the output with it.
        resolved = target.parent.resolve() / target.name
    except (RuntimeError, OSError) as err:  # a symbolic link loop, or a path the system refuses
        raise OutputError(f"{target}: refusing to write (cannot resolve its folder: {err})") from None
    if root != resolved.parent and root not in resolved.parents:
        raise OutputError(f"{target}: refusing to write outside {out_dir} (symbolic link in the way?)")
    if target.is_symlink():
        raise OutputError(f"{target}: refusing to write through a symbolic link")
    return target


class OutputFolder:
    """Targets under one output folder for many names, each folder checked once (not once per file).

    A folder is trusted once it exists and resolves inside the root. This is
    the check before anything is written, for a clear message; the writes
    themselves go through dirfd.Tree, which never follows a link, so a folder
    swapped after this check cannot carry them elsewhere.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root = os.fspath(root)
        self._trusted: set[str] = set()

    def target(self, name: str) -> str:
        problem = check_name(name)
        if problem:
            raise OutputError(f"{name!r}: refusing to write ({problem})")
        parent = name.rpartition("/")[0]
        if parent not in self._trusted:
            safe_output_path(self.root, name)
            if os.path.isdir(os.path.join(self._root, parent)):
                self._trusted.add(parent)
        return os.path.join(self._root, name)
