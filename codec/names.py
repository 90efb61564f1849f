"""The names table (relative POSIX paths, compressed) and per-image flags.

Names are front-coded (each stores how many leading bytes it shares with
the one before, then the rest) and the result is LZMA-compressed. Sequential
names like 00000.png, 00001.png ... shrink to a few hundredths of a byte
each this way, where zlib alone needs two bytes; the stdlib has no front
coder, and these dozen lines are simpler than another dependency.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import lzma
from typing import Iterable, Iterator

import numpy as np

from .errors import ContainerError, InputError
from .name_rules import MAX_NAME_BYTES, check_name
from .namebulk import Piece, ascending, front_coded, hash_one, hash_words, joined, plainly_fine, rebuilt, records

_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20, "preset": 9 | lzma.PRESET_EXTREME}]
# The table is handed to LZMA in pieces of this size as it grows: LZMA's output is the same however
# its input is cut, and the compression (about 0.5 us a byte) is then done while pack still reads, not
# at its end (a 10,000-name table: 4 ms at the end instead of 25).
_FEED_BYTES = 1 << 13
_LZMA_DECODE_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
NAMES_CODEC = 1  # front coding + raw LZMA2, as below


def _shared_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of a and b, at most 255.

    The first differing byte is found from the highest set bit of the two
    prefixes XORed as big integers: a few C-level operations, where a loop
    over the bytes costs a microsecond or more per name in Python.
    """
    n = min(len(a), len(b), 255)
    diff = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n if diff == 0 else n - 1 - (diff.bit_length() - 1) // 8


class TableWriter:
    """Builds a names table one name (or checked piece) at a time; memory holds the compressed table, not the
    names. With `threaded`, LZMA (most of the time for millions of names) runs in a thread beside the caller."""

    def __init__(self, threaded: bool = False):
        self._compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
        self._pool = concurrent.futures.ThreadPoolExecutor(1) if threaded else None
        self._parts: list = []  # compressed bytes, or futures of them
        self._pending = bytearray()
        self._previous = b""
        self.raw_length = 0
        self.count = 0

    def add(self, name: str, checked: bool = False) -> None:
        """Append a name; `checked` skips check_name for names aec generated itself."""
        problem = None if checked else check_name(name)
        if problem:
            raise InputError(f"{name!r}: cannot be stored ({problem})")
        current = name.encode("utf-8")
        shared = _shared_prefix(self._previous, current)
        self._pending.append(shared)
        self._pending += current[shared:]
        self._pending.append(0)
        self._previous = current
        self.count += 1
        if len(self._pending) >= _FEED_BYTES:
            self._flush_pending()

    def add_many(self, names: list[str]) -> None:
        """Append names already checked (pack's: collect_inputs checked them), the same bytes as add gives one
        by one, in a few NumPy steps (add costs about 3 us a name in Python)."""
        if not names:
            return
        data = ("\0".join(names) + "\0").encode("utf-8")
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0)
        raw = front_coded(data, np.diff(ends, prepend=-1) - 1, self._previous) if len(ends) == len(names) else None
        if raw is None:
            for name in names:
                self.add(name, checked=True)
            return
        self._pending += raw
        self._previous = names[-1].encode("utf-8")
        self.count += len(names)
        if len(self._pending) >= _FEED_BYTES:
            self._flush_pending()

    def add_piece(self, piece: Piece) -> None:
        """Append the names of a piece of a table (checked when it was read), the same bytes as add gives."""
        if not len(piece.ends):
            return
        raw = front_coded(piece.data, np.diff(piece.ends, prepend=-1) - 1, self._previous)
        if raw is None:
            for name in piece.names():
                self.add(name, checked=True)
            return
        self._pending += raw
        self._previous = piece.raw(len(piece.ends) - 1)
        self.count += len(piece.ends)
        if len(self._pending) >= _FEED_BYTES:
            self._flush_pending()

    def _flush_pending(self) -> None:
        self.raw_length += len(self._pending)
        data = bytes(self._pending)
        self._pending.clear()
        if self._pool is None:
            self._parts.append(self._compressor.compress(data))
            return
        self._parts.append(self._pool.submit(self._compressor.compress, data))  # one worker: in order
        if len(self._parts) > 4 and isinstance(self._parts[-5], concurrent.futures.Future):
            self._parts[-5] = self._parts[-5].result()  # a few pieces waiting at most: memory stays flat

    def finish(self) -> tuple[bytes, int]:
        """(compressed table, its raw length)."""
        self._flush_pending()
        parts = [p.result() if isinstance(p, concurrent.futures.Future) else p for p in self._parts]
        if self._pool is not None:
            self._pool.shutdown()
        parts.append(self._compressor.flush())
        return b"".join(parts), self.raw_length


def encode_table(names: Iterable[str]) -> tuple[bytes, int]:
    """(compressed table, its raw length). Raw: per name, shared-prefix byte, rest, NUL."""
    writer = TableWriter()
    for name in names:
        writer.add(name)
    return writer.finish()


def name_hashes(names: Iterable[str]) -> np.ndarray:
    """64-bit hashes of names, to find duplicates among millions without holding the names."""
    import hashlib

    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(n.encode("utf-8"), digest_size=8).digest(), "little") for n in names),
        dtype=np.uint64,
    )


def hash_name(name: str) -> int:
    """A name's hash as the pieces of a table give it (Piece.hashes)."""
    return hash_one(name.encode("utf-8"))


def has_duplicates(hashes: np.ndarray) -> bool:
    ordered = np.sort(hashes)
    return bool(np.any(ordered[1:] == ordered[:-1]))


# --- reading a table -------------------------------------------------------------------------
# A table of a million names is read in pieces, each rebuilt and checked with a few numpy and bytes
# operations over all its names at once; a piece where anything looks unusual (or whose names differ
# too much in length to rebuild as a matrix) goes through the rules name by name (_slow_records).

_OUT_BYTES = 1 << 20  # names (with a NUL each) rebuilt at a time, so memory stays flat


def _slow_records(buffer: bytes, previous: bytes, index: int, limit: int) -> tuple[list[bytes], int]:
    """Up to `limit` complete records of `buffer`, name by name with every rule; (names, bytes used)."""
    found, pos = [], 0
    while len(found) < limit:
        end = buffer.find(b"\0", pos + 1)
        if end < 0:
            break
        shared = buffer[pos]
        if shared > len(previous):
            raise ContainerError(f"names table: name {index + len(found) + 1} shares more than the previous name has")
        current = previous[:shared] + buffer[pos + 1 : end]
        try:
            name = current.decode("utf-8")
        except UnicodeDecodeError:
            raise ContainerError(f"names table: name {index + len(found) + 1} is not UTF-8") from None
        problem = check_name(name)
        if problem:
            raise ContainerError(f"names table: unsafe name {name!r} ({problem})")
        found.append(current)
        previous, pos = current, end + 1
    return found, pos


def _pieces(buffer: bytes, previous: bytes, index: int, limit: int) -> tuple[list[Piece], int]:
    """The checked pieces of up to `limit` complete records at the head of `buffer`; (pieces, bytes used)."""
    found = records(buffer, limit)
    if found is None or not len(found[1]):
        return _pieces_slowly(buffer, previous, index, limit)
    starts, ends = found
    shared = np.frombuffer(buffer, np.uint8)[starts].astype(np.int64)
    lengths = shared + ends - starts - 1
    if np.any(shared > np.concatenate(([len(previous)], lengths[:-1]))):
        return _pieces_slowly(buffer, previous, index, limit)
    total, pieces, first = np.cumsum(lengths + 1), [], 0
    while first < len(ends):
        last = int(np.searchsorted(total, (total[first - 1] if first else 0) + _OUT_BYTES, side="right"))
        last = min(max(last, first + 1), len(ends))
        a, b = int(starts[first]), int(ends[last - 1]) + 1
        piece = _fast_piece(buffer[a:b], previous, index + first, shared[first:last], starts[first:last] - a,
                            lengths[first:last])  # fmt: skip
        if piece is None:  # the rules name by name; they raise where a name breaks one
            (piece,), _ = _pieces_slowly(buffer[a:b], previous, index + first, last - first)
        pieces.append(piece)
        previous, first = _last_name(piece), last
    return pieces, int(ends[-1]) + 1


def _fast_piece(region, previous, index, shared, starts, lengths) -> Piece | None:
    rows = rebuilt(region, previous, shared, starts, lengths)
    if rows is None:
        return None
    flat = joined(rows, lengths)
    if not plainly_fine(rows, lengths, flat, MAX_NAME_BYTES):
        return None
    hashes = hash_words(rows.view("<u8"), lengths)
    return Piece(index, flat, np.cumsum(lengths + 1) - 1, hashes, ascending(rows, lengths, shared, previous))


def _pieces_slowly(buffer: bytes, previous: bytes, index: int, limit: int) -> tuple[list[Piece], int]:
    found, pos = _slow_records(buffer, previous, index, limit)
    if not found:
        return [], pos
    lengths = np.array([len(n) for n in found], np.int64)
    hashes = np.array([hash_one(n) for n in found], np.uint64)
    return [Piece(index, b"\0".join(found) + b"\0", np.cumsum(lengths + 1) - 1, hashes)], pos


def _last_name(piece: Piece) -> bytes:
    return piece.raw(len(piece.ends) - 1)


def table_pieces(
    stored: bytes, raw_length: int, count: int, unique: bool = True, piece: int = 1 << 20
) -> Iterator[Piece]:
    """The names of a table a piece at a time, every one checked with check_name, the totals against the header,
    and (unique) no two alike, by hash and then exactly: all before the last piece comes. Memory stays bounded
    by `piece` and the pieces' size, plus 8 bytes a name for the hashes."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_DECODE_FILTERS)
    fed, produced = False, 0

    def more() -> bytes:
        nonlocal fed, produced
        if decompressor.eof or (fed and decompressor.needs_input):
            return b""
        try:
            data = decompressor.decompress(b"" if fed else stored, max_length=piece)
        except (lzma.LZMAError, EOFError) as err:
            raise ContainerError(f"names table: cannot decompress ({err})") from None
        fed = True
        produced += len(data)
        if produced > raw_length:
            raise ContainerError(f"names table: longer than the {raw_length} bytes the header says")
        return data

    buffer, previous, index, hashes, held, in_order = b"", b"", 0, [], None, True
    while index < count:
        data = more()
        if not data:
            raise ContainerError(f"names table: ends before name {index + 1} of {count}")
        buffer += data
        pieces, used = _pieces(buffer, previous, index, count - index)
        buffer = buffer[used:]
        if buffer.find(b"\0", 1) < 0 and len(buffer) > MAX_NAME_BYTES + 2:
            raise ContainerError(f"names table: name {index + sum(len(p.ends) for p in pieces) + 1} is too long")
        for p in pieces:
            index += len(p.ends)
            previous = _last_name(p)
            hashes.append(p.hashes if unique else p.hashes[:0])
            in_order = in_order and p.ascending
            if held is not None:
                yield held
            held = p
    if buffer or more() or produced != raw_length or not decompressor.eof or decompressor.unused_data:
        raise ContainerError(f"names table: does not end where the header says ({raw_length} bytes, {count} names)")
    if unique and not in_order:  # names in strictly increasing order are unique
        _check_unique(stored, raw_length, count, hashes)
    if held is not None:
        yield held


def _check_unique(stored: bytes, raw_length: int, count: int, parts: list[np.ndarray]) -> None:
    """ContainerError if two names are alike: where two hashes meet, the names with those hashes compared."""
    ordered = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    parts.clear()  # sorted in place: 8 bytes a name at the peak, not 16
    ordered.sort()
    met = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if len(met):
        seen: set[bytes] = set()
        for p in table_pieces(stored, raw_length, count, unique=False):
            for i in np.flatnonzero(np.isin(p.hashes, met)).tolist():
                if p.raw(i) in seen:
                    raise ContainerError("names table: duplicate names")
                seen.add(p.raw(i))


class Names:
    """A table's names one by one (an iterator, as iter_names gives), or a piece at a time (pieces())."""

    def __init__(self, stored: bytes, raw_length: int, count: int):
        self._table = (stored, raw_length, count)
        self._names: Iterator[str] | None = None

    def pieces(self) -> Iterator[Piece]:
        """The pieces of the whole table, read afresh (see table_pieces)."""
        return table_pieces(*self._table)

    def _iterator(self) -> Iterator[str]:
        if self._names is None:
            self._names = itertools.chain.from_iterable(p.names() for p in self.pieces())
        return self._names

    def __iter__(self) -> Iterator[str]:
        return self._iterator()

    def __next__(self) -> str:
        return next(self._iterator())

    def take(self, count: int) -> list[str]:
        """The next `count` names (fewer at the end)."""
        return list(itertools.islice(self._iterator(), count))


def iter_names(stored: bytes, raw_length: int, count: int) -> Names:
    """The names of a table one by one, each checked with check_name, no two alike, the totals against
    the header (see table_pieces); memory stays flat whatever the header claims."""
    return Names(stored, raw_length, count)


def decode_table(stored: bytes, raw_length: int, count: int) -> list[str]:
    """Every name of a table, checked, and no two alike."""
    return list(iter_names(stored, raw_length, count))
