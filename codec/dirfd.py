"""The folders below one output folder, opened one name at a time without following links.

unpack checks its target once and then writes thousands of files: a folder
checked by path can be swapped for a symbolic link before a write by path
reaches it. Here the root is opened once, every folder below it is opened
relative to its parent's descriptor with O_NOFOLLOW, and files are written
and removed relative to those descriptors only. A bounded cache of
descriptors keeps this to about one open per folder and process. Rollback
is what an unpack made, and takes it away again, through the same descriptors.
"""

from __future__ import annotations

import array
import collections
import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import OutputError
from .fileio import file_key

# getattr: `import aec` must work where these are missing (Windows), though unpack to PNG files does not.
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
CACHED = 64  # open folders kept per process (names come in order, so few are ever needed again)
UNKNOWN = 1  # the key of a file that may or may not have been written (a worker's report never came)
_ROOT = -1  # the node of the root; made folders are nodes 0, 1, ...; folders found there are None
_MEMO = 1024


def _folder_error(parent: int | None, name: str, shown: str, err: OSError) -> OutputError:
    """One line on why `name` in `parent` cannot be opened as a folder."""
    try:
        status = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        status = None
    if status is not None and stat.S_ISLNK(status.st_mode):
        return OutputError(f"{shown}: refusing to write through a symbolic link")
    if status is not None and not stat.S_ISDIR(status.st_mode):
        return OutputError(f"{shown}: exists and is not a folder")
    return OutputError(f"{shown}: cannot open the folder ({err.strerror or err})")


class Tree:
    """An output root and the folders below it. With `limit`, folder() may make missing folders (at most
    `limit`), and they are recorded compactly, as (parent, name, key), so that remove_made() can take
    them away again; without, a missing folder is an error."""

    def __init__(self, path: str, limit: int | None = None):
        self.path = path
        try:
            self.fd = os.open(path, _DIR_FLAGS)
        except OSError as err:
            raise _folder_error(None, path, path, err) from None
        self.key = file_key(os.fstat(self.fd))
        self._cache: collections.OrderedDict[str, tuple[int, int | None]] = collections.OrderedDict()
        self._limit = limit
        self._parents = array.array("q")  # per made folder: its parent's node, or -2 - index into _bases
        self._names: list[str] = []
        self._keys = array.array("Q")
        self._by_key: dict[int, int] = {}  # made folder's key -> node: found again after its cache entry went
        self._bases: list[str] = []  # folders found there that hold made folders
        self._base_index: dict[str, int] = {}

    @classmethod
    def reopen(cls, path: str, key: int) -> Tree:
        """The root another process opened and checked, opened again here: the same folder, or an error."""
        tree = cls(path)
        if tree.key != key:
            tree.close()
            raise OutputError(f"{path}: the folder was replaced while unpack was writing")
        return tree

    def close(self) -> None:
        for fd, _ in self._cache.values():
            os.close(fd)
        self._cache.clear()
        os.close(self.fd)

    def shown(self, rel: str) -> str:
        return os.path.join(self.path, rel) if rel else self.path

    def folder(self, rel: str, make: bool = False) -> int:
        """The descriptor of folder `rel` ('' is the root), each name below the root opened without following
        a link; with `make`, missing folders are made."""
        if not rel:
            return self.fd
        hit = self._cache.get(rel)
        if hit is not None:
            self._cache.move_to_end(rel)
            return hit[0]
        base = rel
        while True:  # the nearest folder above that is open already
            base = base.rpartition("/")[0]
            hit = self._cache.get(base) if base else (self.fd, _ROOT)
            if hit is not None:
                break
        fd, node = hit
        start = len(base) + 1 if base else 0
        while start <= len(rel):
            end = rel.find("/", start)
            end = len(rel) if end < 0 else end
            fd, node = self._child(fd, node, rel[:end], rel[start:end], make)
            start = end + 1
        return fd

    def _child(self, parent: int, parent_node: int | None, sub: str, name: str, make: bool) -> tuple[int, int | None]:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            node = self._by_key.get(file_key(os.fstat(fd))) if self._by_key else None
        except FileNotFoundError as err:
            if not make:
                raise OutputError(f"{self.shown(sub)}: the folder went away while unpack was writing") from None
            fd, node = self._make(parent, parent_node, sub, name, err)
        except OSError as err:
            raise _folder_error(parent, name, self.shown(sub), err) from None
        self._cache[sub] = (fd, node)
        if len(self._cache) > CACHED:
            os.close(self._cache.popitem(last=False)[1][0])
        return fd, node

    def _make(self, parent: int, parent_node: int | None, sub: str, name: str, err: OSError) -> tuple[int, int | None]:
        if self._limit is None:
            raise OutputError(f"{self.shown(sub)}: cannot open the folder ({err.strerror})")
        if len(self._names) >= self._limit:
            raise OutputError(f"{self.path}: refusing to make more than {self._limit} folders for these images")
        made = True
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        except FileExistsError:
            made = False  # made by someone else meanwhile: used (if it is a folder), never removed
        except OSError as mkdir_err:
            raise OutputError(f"{self.shown(sub)}: cannot make the folder ({mkdir_err.strerror})") from None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as open_err:
            raise _folder_error(parent, name, self.shown(sub), open_err) from None
        if not made:
            return fd, None
        if parent_node is None:  # a folder that was there: remembered by its path (few: the target's own)
            base = sub.rpartition("/")[0]
            index = self._base_index.get(base)
            if index is None:
                index = self._base_index[base] = len(self._bases)
                self._bases.append(base)
            parent_node = -2 - index
        key = file_key(os.fstat(fd))
        node = len(self._names)
        self._parents.append(parent_node)
        self._names.append(name)
        self._keys.append(key)
        self._by_key[key] = node
        return fd, node

    def remove_file(self, rel: str, key: int, since_ns: int = 0) -> None:
        """Remove the file `rel` if it is still the one this run wrote (its key; UNKNOWN: any regular file
        changed since `since_ns`). Nothing else, and never through a link."""
        folder, _, base = rel.rpartition("/")
        with contextlib.suppress(OSError, OutputError):
            fd = self.folder(folder)
            status = os.stat(base, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(status.st_mode):
                return
            if file_key(status) == key or (key == UNKNOWN and status.st_mtime_ns >= since_ns):
                os.unlink(base, dir_fd=fd)

    def remove_made(self) -> None:
        """Remove the folders folder() made, the last made first, each only if it is still that (empty) folder."""
        memo: collections.OrderedDict[int, str] = collections.OrderedDict()
        for node in range(len(self._names) - 1, -1, -1):
            path = self._node_path(node, memo)
            entry = self._cache.pop(path, None)
            if entry is not None:
                os.close(entry[0])
            above, _, name = path.rpartition("/")
            with contextlib.suppress(OSError, OutputError):
                fd = self.folder(above)
                if file_key(os.stat(name, dir_fd=fd, follow_symlinks=False)) == self._keys[node]:
                    os.rmdir(name, dir_fd=fd)

    def _node_path(self, node: int, memo: collections.OrderedDict[int, str]) -> str:
        """The path of a node below the root, from the parent links (memo: recent answers, so a long chain
        removed from its end costs one walk, not one per folder)."""
        if node == _ROOT:
            return ""
        if node < _ROOT:
            return self._bases[-2 - node]
        parts, at = [], node
        while at >= 0 and at not in memo:
            parts.append(self._names[at])
            at = self._parents[at]
        above = memo[at] if at >= 0 else self._node_path(at, memo)
        path = "/".join(([above] if above else []) + parts[::-1])
        memo[node] = path
        if self._parents[node] >= 0:  # its parent is very likely asked for next
            memo[self._parents[node]] = path.rpartition("/")[0]
        while len(memo) > _MEMO:
            memo.popitem(last=False)
        return path


class KeySet:
    """Keys of the files written so far, to tell whether a file about to be replaced is one of them: sorted
    runs that merge like a binary counter, so adding n keys costs O(n log n) in all."""

    def __init__(self):
        self._runs: list[np.ndarray] = []

    def add(self, keys: np.ndarray) -> None:
        run = np.sort(keys[keys > UNKNOWN])
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self._runs.pop(), run]))
        self._runs.append(run)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), bool)
        for run in self._runs:
            if len(run):
                found |= run[np.minimum(np.searchsorted(run, keys), len(run) - 1)] == keys
        return found


class Rollback:
    """What an unpack made, taken away again if it fails: the target stays as it was.

    Per file, 8 bytes: the key (device and inode) of the file this run made
    there; 0 for none (not written, or an existing file that -f replaced with
    a complete new one: that stays), UNKNOWN where a worker's report never
    came. Only a file that is still the one with its key is removed, and
    only a folder this run made (Tree keeps that record), never through a link.
    """

    def __init__(self, out: Path, force: bool, folder_limit: int):
        self.out, self.force, self.folder_limit = out, force, folder_limit
        self.started = time.time_ns() - 2_000_000_000  # file times can lag the clock (coarse ticks, 2 s on FAT)
        self.above: list[tuple[str, int]] = []  # the folders made by path: the root and any missing above it
        self.tree: Tree | None = None
        self.chunks: list[np.ndarray] = []  # per written chunk, per file: the key of the file this run made
        self.pending: np.ndarray | None = None  # the chunk being written: write_file_at's answers, in rows
        self.seen = KeySet() if force else None  # with -f: every file written, to catch a name that reaches one

    def open(self) -> Tree:
        """Make the root (and what is missing above it), then open it once, not following a link."""
        missing, folder = [], self.out
        while not os.path.lexists(folder):
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
                self.above.append((os.fspath(folder), file_key(os.lstat(folder))))
            except FileExistsError:
                pass
            except OSError as err:
                raise OutputError(f"{folder}: cannot make the folder ({err.strerror or err})") from None
        self.tree = Tree(os.fspath(self.out), limit=self.folder_limit)
        return self.tree

    def written(self, names: list[str]) -> None:
        """Record the pending chunk as written; with -f, fail if one of its files replaced a file this run wrote."""
        keys, made, replaced, seen = self.pending
        ours = np.where(replaced == 0, keys, 0)
        self.pending = None
        self.chunks.append(ours)
        if self.seen is None or not len(keys):
            return
        # A file of an earlier chunk was written before; one of this chunk only if it had its key before the
        # file with that key was replaced (a key freed by replacing an existing file is soon reused).
        twice = self.seen.contains(replaced)
        order = np.argsort(keys)
        at = order[np.minimum(np.searchsorted(keys[order], replaced), len(keys) - 1)]
        twice |= (keys[at] == replaced) & (made[at] < seen)
        twice &= replaced != 0
        self.seen.add(keys)
        if twice.any():
            ours[twice] = keys[twice]  # the file is this run's, whichever name wrote it last
            raise OutputError(
                f"{self.tree.shown(names[int(np.flatnonzero(twice)[0])])}: two stored names reach this one file "
                "(a case-insensitive or normalising file system?)"
            )

    def undo(self, names: Iterator[str]) -> None:
        if self.tree is not None:
            records = self.chunks
            if self.pending is not None:
                records = records + [np.where(self.pending[2] == 0, self.pending[0], 0)]
            for ours in records:
                for key, name in zip(ours.tolist(), names):
                    if key and not (key == UNKNOWN and self.force):  # -f: it may be a file that existed
                        self.tree.remove_file(name, key, self.started)
            self.tree.remove_made()
            self.tree.close()
            self.tree = None
        for path, key in reversed(self.above):
            with contextlib.suppress(OSError):
                if file_key(os.lstat(path)) == key:
                    os.rmdir(path)
