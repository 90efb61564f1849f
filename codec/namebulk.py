"""The names table's bulk reading: a piece of front-coded names rebuilt, checked and hashed with a few numpy
and bytes operations over all its names at once, where a loop over a million names costs seconds in Python.

Each function answers for a whole piece or says it cannot (None, False): names.py then goes name by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_CONTROL = bytes(range(1, 32)) + b"\x7f\\"  # what translate() deletes: a piece that shrinks has one
_DOT_PART = re.compile(rb"[\0/]\.\.?(?=[\0/])")  # a '.' or '..' part, in NUL-separated names
_MUL = np.uint64(0x9E3779B97F4A7C15)


def hash_words(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit hashes of names given as rows of little-endian uint64 words, zero after the name (words past
    a name's end leave its hash alone, so that it does not depend on the width of the rows)."""
    h = lengths.astype(np.uint64) * _MUL
    for k, column in enumerate(words.T):
        mixed = (h ^ column) * _MUL
        mixed ^= mixed >> np.uint64(29)
        h = np.where(lengths > 8 * k, mixed, h)
    return h


def hash_one(name: bytes) -> int:
    """hash_words for one name, in Python (for pieces rebuilt name by name)."""
    padded = name + bytes(-len(name) % 8)
    words = np.frombuffer(padded, "<u8").reshape(1, -1)
    return int(hash_words(words, np.array([len(name)]))[0])


def rebuilt(region: bytes, previous: bytes, shared: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """The names of the records at `starts` (each: shared count, rest, NUL) of `region`, as the rows of a
    zero-padded uint8 matrix [n, width] (a multiple of 8), or None when their lengths differ too much for that."""
    n = len(starts)
    width = -(-(int(lengths.max()) + 1) // 8) * 8
    if n * width > 4 * int(lengths.sum() + n) + (1 << 16):
        return None
    # Byte j of name i is its own (rest) byte if j >= shared[i], else byte j of the name before: per column,
    # the last row at or above with its own byte there. Row 0 is the name before these.
    source = np.frombuffer(previous + region, np.uint8)
    index = np.int32 if len(source) < 2**31 - width else np.int64  # half the memory traffic of int64
    at = np.concatenate(([0], starts + len(previous) + 1 - shared)).astype(index)
    shared = np.concatenate(([0], shared)).astype(index)
    ends = at + np.concatenate(([len(previous)], lengths)).astype(index)  # from a name's end on, its NUL is read
    rows = np.zeros((n + 1, width), np.uint8)
    everyone = int(shared.max())  # from this column on, every name has its own byte there
    for j in range(int(lengths.max()) + 1):
        if j >= everyone:
            rows[:, j] = source[np.minimum(at + j, ends)]
            continue
        own = np.flatnonzero(shared <= j)
        values = source[np.minimum(at[own] + j, ends[own])]
        rows[:, j] = np.repeat(values, np.diff(own, append=n + 1))
    return rows[1:]


def joined(rows: np.ndarray, lengths: np.ndarray) -> bytes:
    """The rebuilt names' bytes, each followed by its NUL (the zero after it in its row)."""
    if lengths.min() == lengths.max():  # numbered names: one slice of the matrix
        return rows[:, : int(lengths[0]) + 1].tobytes()
    return rows[np.arange(rows.shape[1]) <= lengths[:, None]].tobytes()


def ascending(rows: np.ndarray, lengths: np.ndarray, shared: np.ndarray, previous: bytes) -> bool:
    """Whether the rebuilt names (rows) follow `previous` in strictly increasing byte order, which proves them
    unique without hashing and sorting (pack's usual output: a sorted folder, numbered array images). Each name
    copies its first shared[i] bytes from the one before, so it is the greater if its next byte is (zero
    padding makes a name's end the smallest byte). False only says to check by hashes."""
    if len(rows) and rows[0, : lengths[0]].tobytes() <= previous:
        return False
    width = rows.shape[1]
    flat = rows.reshape(-1)  # one flat index: half the time of a row and column pair
    at = np.arange(1, len(rows), dtype=np.int64) * width + shared[1:]
    return bool(np.all(flat[at] > flat[at - width]))


def plainly_fine(rows: np.ndarray, lengths: np.ndarray, flat: bytes, max_bytes: int) -> bool:
    """Whether every name of a rebuilt piece (rows; `flat` its bytes) keeps name_rules.check_name's rules: True proves it,
    False only says to check them one by one. Bytes suffice: UTF-8 puts no ASCII byte inside a character."""
    first = rows[:, 0]
    second = rows[:, 1] if rows.shape[1] > 1 else np.zeros(len(rows), np.uint8)
    if lengths.min() < 1 or lengths.max() > max_bytes or len(flat.translate(None, _CONTROL)) != len(flat):
        return False
    if np.any(second == ord(":")):
        return False  # maybe a drive prefix
    slash = b"/" in flat  # one byte: memchr, where a two-byte search costs ten times as much
    if slash:
        last = rows[np.arange(len(rows)), lengths - 1]
        if np.any((first == ord("/")) | (last == ord("/"))) or b"//" in flat:
            return False  # an absolute path or an empty part
    if ((slash and b"/." in flat) or np.any(first == ord("."))) and _DOT_PART.search(b"\0" + flat):
        return False
    if not flat.isascii():
        try:
            flat.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def records(buffer: bytes, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(starts, NUL positions) of up to `limit` complete records at the head of `buffer`, or None where its NULs
    are unusual (an empty name) and the records must be found one by one."""
    if buffer.startswith(b"\0\0") or b"\0\0\0" in buffer:
        return None
    a = np.frombuffer(buffer, np.uint8)
    nul = np.flatnonzero(a == 0)
    # A NUL after a NUL is a record's shared count of 0; any other NUL (but at 0) ends a record.
    ends = nul[(nul > 0) & (a[np.maximum(nul - 1, 0)] != 0)][:limit]
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    return starts, ends


def front_coded(data: bytes, lengths: np.ndarray, previous: bytes) -> bytes | None:
    """The table records (shared count up to 255, rest, NUL) of NUL-ended names `data` following `previous`,
    as names.TableWriter writes them; None when their lengths differ too much to do it as a matrix."""
    n = len(lengths)
    width = int(max(lengths.max(), len(previous))) + 1
    if (n + 1) * width > 4 * len(data) + (1 << 16):
        return None
    rows = np.zeros((n + 1, width), np.uint8)
    rows[0, : len(previous)] = np.frombuffer(previous, np.uint8)
    rows[1:][np.arange(width) < lengths[:, None]] = np.frombuffer(data, np.uint8)[np.frombuffer(data, np.uint8) != 0]
    # The first byte where a name differs from the one before (names hold no NUL, so a shorter one differs
    # where it ends; no two names are alike).
    shared = np.minimum(np.argmax(rows[1:] != rows[:-1], axis=1), 255)
    out = np.zeros((n, width + 1), np.uint8)
    out[:, 0] = shared
    out[:, 1:] = rows[1:]
    columns = np.arange(width)
    keep = np.concatenate([np.ones((n, 1), bool), (columns >= shared[:, None]) & (columns <= lengths[:, None])], 1)
    return out[keep].tobytes()


@dataclass
class Piece:
    """Consecutive names of a table, checked: `data` holds each one's UTF-8 bytes and a NUL."""

    start: int  # index of the first name in the table
    data: bytes
    ends: np.ndarray  # int64 offset of each name's NUL in data
    hashes: np.ndarray  # uint64 per name, as _hash_words gives
    ascending: bool = False  # its names, and its first after the name before it, in strictly increasing order

    def names(self) -> list[str]:
        return self.data[:-1].decode("utf-8").split("\0") if len(self.ends) else []

    def raw(self, i: int) -> bytes:
        return self.data[(int(self.ends[i - 1]) + 1 if i else 0) : int(self.ends[i])]

    def pick(self, indices: list[int]) -> list[str]:
        return [self.raw(i).decode("utf-8") for i in indices]

    def starting_with(self, prefix: bytes) -> list[int]:
        """Indices (within the piece) of the names that start with `prefix`."""
        hits = [0] if self.data.startswith(prefix) else []
        at = self.data.find(b"\0" + prefix)
        while 0 <= at < len(self.data) - 1:
            hits.append(int(np.searchsorted(self.ends, at)) + 1)
            at = self.data.find(b"\0" + prefix, at + 1)
        return hits
