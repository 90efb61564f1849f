"""Which stored images a list of NAMEs and GLOBs selects (`aec unpack IN.aec NAME...`, `aec show`).

A pattern with `*`, `?` or `[` is a glob (fnmatch, case-sensitive, `*`
crosses `/` as in tar); any other pattern is an exact name. Either may name
the stored name or the file unpack writes for it (`a/b.jpg` or `a/b.png`).
Every pattern must select something, or the selection fails naming it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import InputError, list_problems
from .name_rules import output_name
from .names import Names

_GLOB = re.compile(r"[*?\[]")


@dataclass
class Selection:
    """All images (indices None), or the sorted indices of the chosen ones."""

    indices: np.ndarray | None
    total: int
    names: list[str] | None = None  # the chosen names, in order (None: all)

    @property
    def count(self) -> int:
        return self.total if self.indices is None else len(self.indices)

    def chunk_wanted(self, chunk_size: int) -> Callable[[int], bool] | None:
        """Whether chunk i holds a selected image (None: every chunk does)."""
        if self.indices is None:
            return None
        chunks = set((self.indices // chunk_size).tolist())
        return chunks.__contains__

    def within(self, first: int, count: int) -> slice | np.ndarray:
        """The positions, within the chunk of `count` images from `first`, of the selected images."""
        if self.indices is None:
            return slice(None)
        lo, hi = np.searchsorted(self.indices, [first, first + count])
        return self.indices[lo:hi] - first

    def filter(self, names: Iterable[str]) -> Iterator[str]:
        """The selected names out of all stored names (`names`, read only when everything is selected)."""
        if self.indices is None:
            yield from names
        else:
            yield from self.names


def everything(total: int) -> Selection:
    return Selection(None, total)


def select(names: Iterable[str], patterns: list[str], where: str) -> Selection:
    """The images of `names` (every stored name, in order) that `patterns` select; InputError names
    every pattern that selects nothing."""
    exact = {p for p in patterns if not _GLOB.search(p)}
    globs = [(p, re.compile(fnmatch.translate(p))) for p in patterns if _GLOB.search(p)]
    used: set[str] = set()
    chosen: list[int] = []
    chosen_names: list[str] = []
    total = 0

    def match(i: int, name: str) -> None:
        written = name if name.endswith(".png") else output_name(name)
        hit = [p for p in (name, written) if p in exact]
        hit += [p for p, rx in globs if rx.match(name) or rx.match(written)]
        if hit:
            chosen.append(i)
            chosen_names.append(name)
            used.update(hit)

    if isinstance(names, Names) and not globs:
        # Only names that start as a pattern does (its stem, for a .png name) can match it: found in the
        # table's pieces with bytes.find, every name checked all the same (the pieces are).
        stems = sorted({_stem(p) for p in exact} - {None})
        for piece in names.pieces():
            found = sorted({i for stem in stems for i in piece.starting_with(stem)})
            for i, name in zip(found, piece.pick(found)):
                match(piece.start + i, name)
            total = piece.start + len(piece.ends)
    else:
        for i, name in enumerate(names):  # one pass over up to millions of names: the common cases first
            total = i + 1
            written = name if name.endswith(".png") else output_name(name)
            if name in exact or written in exact or globs:
                match(i, name)
    missing = [p for p in patterns if p not in used]
    if missing:
        shown = [f"no stored name matches {p!r}" for p in missing]
        raise InputError(f"{where}: {list_problems(shown)} (aec list shows the names)")
    return Selection(np.array(chosen, dtype=np.int64), total, chosen_names)


def _stem(pattern: str) -> bytes | None:
    """What every name `pattern` selects starts with: the name itself, or its stem when it names a .png that
    unpack writes for another suffix (None: it can select nothing)."""
    try:
        return (pattern[:-4] if pattern.endswith(".png") else pattern).encode("utf-8")
    except UnicodeEncodeError:
        return None
