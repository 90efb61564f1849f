"""Atomic output: write to a temporary name in the target folder, then rename.

A killed process leaves at most a hidden temporary file, never a partial
file under the final name; nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import OutputError


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
