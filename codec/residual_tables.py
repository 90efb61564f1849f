"""The residual coder's tables (residual.py): their sizes, the prior they start from, and a chunk's
adaptive weights.

The prior is part of residual coder 1's format (docs/FORMAT.md): starting weights fitted on the
MNIST training digits (python -m aec.training.residual_prior), stored sparsely in
weights/residual-prior-1.npz and checked against its SHA-256 when read.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import Callable, Iterable

import numpy as np

from . import weights
from .errors import AecError

CLASS_EDGES = np.array([1, 16, 64, 128, 192, 244, 252])  # class c holds values [lower[c], lower[c+1])
CLASSES = len(CLASS_EDGES) + 1
PART = 8  # an offset in a class is coded as offset // 8 (high), then offset % 8 (low)
ERROR_GROUP_EDGES = np.array([1, 3, 9])  # tables are shared by max errors 0 | 1-2 | 3-8 | 9-255
CLASS_CONTEXTS = 13 * 3 * 5 * CLASSES * CLASSES * 5 * 5
HIGH_CONTEXTS = CLASSES * 10**4
LOW_CONTEXTS = CLASSES * PART * 10**3
GROUPS = len(ERROR_GROUP_EDGES) + 1
# The tables' starting weights, fitted on the MNIST training digits (python -m aec.training.residual_prior):
# part of the format, like JPEG's example tables, so a file and its SHA-256 never change.
PRIOR_FILE = weights.FOLDER / "residual-prior-1.npz"
PRIOR_SHA256 = "aa317854ce5c82d1c93979a3715951a00bd46180655b994b6817cf0f98a033da"
PRIOR_TABLES = {"classes": (CLASS_CONTEXTS, CLASSES), "highs": (HIGH_CONTEXTS, PART), "lows": (LOW_CONTEXTS, PART)}


def sparse_prior(tables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The prior as stored: for each table, the rows (over all groups) not all 1 and their weights."""
    stored = {}
    for name in PRIOR_TABLES:
        flat = tables[name].reshape(-1, tables[name].shape[-1])
        rows = np.flatnonzero((flat != 1).any(axis=1)).astype("<i4")
        stored[f"{name}_rows"], stored[f"{name}_weights"] = rows, flat[rows].astype("<u2")
    return stored


def prior_digest(stored: dict[str, np.ndarray]) -> str:
    """SHA-256 over each stored array's name, then its little-endian bytes, in PRIOR_TABLES order."""
    digest = hashlib.sha256()
    for name in PRIOR_TABLES:
        for part, dtype in (("rows", "<i4"), ("weights", "<u2")):
            digest.update(f"{name}_{part}\0".encode())
            digest.update(np.ascontiguousarray(stored[f"{name}_{part}"], dtype=dtype).data)
    return digest.hexdigest()


# The prior is read once per process, by whichever thread asks first (pack starts reading it in the
# background, preload()); the lock makes a second asker wait for that read instead of repeating it.
_prior_lock = threading.RLock()


def _once(build: Callable) -> Callable:
    """functools.cache, made to build each value once when threads ask for it at the same time."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def get(*args):
        with _prior_lock:
            return cached(*args)

    return get


@_once
def _stored_prior() -> dict[str, np.ndarray]:
    """The prior as the file stores it, its SHA-256 checked."""
    try:
        with np.load(PRIOR_FILE, allow_pickle=False) as file:
            stored = {name: file[name] for name in file.files}
        if prior_digest(stored) != PRIOR_SHA256:
            raise AecError(f"{PRIOR_FILE}: damaged (not the prior residual coder 1 specifies): reinstall aec")
    except (OSError, ValueError, KeyError) as err:
        raise AecError(f"{PRIOR_FILE}: cannot be read ({err}): reinstall aec") from None
    return stored


@_once
def group_prior(group: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One error group's starting weights where they are not all 1: per table, (rows, float32 weights).
    A chunk's tables are these scattered over ones (as fast as copying a dense 17 MB table, which is
    neither built nor kept)."""
    stored = _stored_prior()
    prior = {}
    for name, (rows, _) in PRIOR_TABLES.items():
        at = stored[f"{name}_rows"].astype(np.int64) - group * rows
        mine = (at >= 0) & (at < rows)
        prior[name] = at[mine], stored[f"{name}_weights"][mine].astype(np.float32)
    return prior


def preload(groups: Iterable[int]) -> threading.Thread:
    """Read the prior and pick out these error groups' rows (group_prior) in a background thread, while
    the caller does other work (pack: loading the model, or its readers' first files). NumPy and zlib
    release the GIL for most of it. A failure is left for the coder to raise where it needs the prior."""

    def build() -> None:
        try:
            for group in groups:
                group_prior(group)
        except AecError:
            pass

    thread = threading.Thread(target=build, name="residual-prior", daemon=True)
    thread.start()
    return thread


def error_group(max_error: int) -> int:
    """The error group (table set) of a residual's max error."""
    return int(np.searchsorted(ERROR_GROUP_EDGES, max_error, side="right"))


class Tables:
    """A chunk's adaptive weights: 2 x count + 1 per symbol, rows of 8, one set per error group present.
    Both sides add 2 for every symbol coded, after each wave."""

    def __init__(self, groups: np.ndarray, prior: Callable[[int], dict] | None = None):
        self.sets = sets = len(groups)
        spare = _take_spare(sets) if prior is not None else None
        if spare is not None:
            self.classes, self.highs, self.lows = spare
        else:
            # With a prior every weight is set below: np.empty saves a pass over 15 MB per error group.
            start = np.ones if prior is None else np.empty
            self.classes = start((sets * CLASS_CONTEXTS, CLASSES), np.float32)
            self.highs = start((sets * HIGH_CONTEXTS, PART), np.float32)
            self.lows = start((sets * LOW_CONTEXTS, PART), np.float32)
        if prior is not None:
            for i, g in enumerate(groups.tolist()):
                weights = prior(g)
                for name, table in (("classes", self.classes), ("highs", self.highs), ("lows", self.lows)):
                    contexts = PRIOR_TABLES[name][0]
                    mine = table[i * contexts : (i + 1) * contexts]
                    mine.fill(1)
                    rows, values = weights[name]
                    mine[rows] = values

    def update(self, seen) -> None:
        for table, keys, symbols in seen:
            if keys.size:
                np.add.at(table.reshape(-1), keys * table.shape[1] + symbols, np.float32(2))

    def release(self) -> None:
        """Keep these arrays for the next chunk of as many table sets: setting the prior in memory
        already paged in takes a few ms, in fresh memory about 20 (15 MB a set, page by page)."""
        with _spare_lock:
            spares = _spare.setdefault(self.sets, [])
            if len(spares) < 2:  # two chunks at once at most (threads of one process); the rest is freed
                spares.append((self.classes, self.highs, self.lows))


_spare: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}  # table sets -> arrays to reuse
_spare_lock = threading.Lock()


def _take_spare(sets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    with _spare_lock:
        spares = _spare.get(sets)
        return spares.pop() if spares else None
