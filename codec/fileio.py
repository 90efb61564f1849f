"""Atomic output: write to a temporary name in the target folder, then rename.

A killed process leaves at most a hidden temporary file, never a partial
file under the final name; nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import OutputError
from .names import check_name


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
# same no-clobber rename is done with link() + unlink().
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2 = None


def _rename_no_replace(src: str, dst: str) -> None:
    """Rename src to dst in one step, failing with FileExistsError if dst exists (even as a link)."""
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
        if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), dst)
    os.link(src, dst)  # fails if dst exists
    os.unlink(src)


def write_new_file(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write `data` to `path` so that it appears whole or not at all; refuse an existing path unless `force`.

    Not fsynced: a crash of the machine (not of aec) may lose recent files,
    as with cp or tar. A killed aec leaves at most a hidden .NAME.PID.tmp.
    """
    path = os.fspath(path)
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
    except FileExistsError:
        _remove_quietly(tmp)
        raise OutputError(f"{path}: already exists (use --force to overwrite)") from None
    except OSError as err:
        _remove_quietly(tmp)
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


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

    A folder is trusted once it exists and resolves inside the root; files
    are then created without following links (write_new_file refuses an
    existing name, a symbolic link included).
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
