"""The names table (relative POSIX paths, compressed) and per-image flags.

Names are front-coded (each stores how many leading bytes it shares with
the one before, then the rest) and the result is LZMA-compressed. Sequential
names like 00000.png, 00001.png ... shrink to a few hundredths of a byte
each this way, where zlib alone needs two bytes; the stdlib has no front
coder, and these dozen lines are simpler than another dependency.
"""

from __future__ import annotations

import lzma
import re
import unicodedata
from typing import Iterable, Iterator

import numpy as np

from .errors import ContainerError, InputError

_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20, "preset": 9 | lzma.PRESET_EXTREME}]
_LZMA_DECODE_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
MAX_NAME_BYTES = 4096
NAMES_CODEC = 1  # front coding + raw LZMA2, as below
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
_BAD_COMPONENT = frozenset(("", ".", ".."))


# Names made only of these, each part starting with a letter, digit, '_' or '-', are safe by
# the rules below; one match is much cheaper than the checks (pack checks every name).
_PLAINLY_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_. -]*(?:/[A-Za-z0-9_-][A-Za-z0-9_. -]*)*")


def check_name(name: str) -> str | None:
    """Why `name` is not a safe stored name, or None if it is.

    Safe: a relative POSIX path, no empty, '.' or '..' parts, no drive
    prefix, no backslash, no control characters, at most MAX_NAME_BYTES.
    """
    if len(name) <= MAX_NAME_BYTES and _PLAINLY_SAFE.fullmatch(name):
        return None
    return name_problem(name)


def name_problem(name: str) -> str | None:
    """check_name's rules one by one, without the shortcut."""
    if not name:
        return "empty name"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return "name too long"
    if _FORBIDDEN.search(name):
        return "control character or backslash in name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if not _BAD_COMPONENT.isdisjoint(name.split("/")):
        return "empty, '.' or '..' path component"
    return None


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
    """Builds a names table one name at a time; memory holds the compressed table, not the names."""

    def __init__(self):
        self._compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
        self._parts: list[bytes] = []
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
        if len(self._pending) >= 1 << 16:
            self._flush_pending()

    def _flush_pending(self) -> None:
        self.raw_length += len(self._pending)
        self._parts.append(self._compressor.compress(bytes(self._pending)))
        self._pending.clear()

    def finish(self) -> tuple[bytes, int]:
        """(compressed table, its raw length)."""
        self._flush_pending()
        self._parts.append(self._compressor.flush())
        return b"".join(self._parts), self.raw_length


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


def has_duplicates(hashes: np.ndarray) -> bool:
    ordered = np.sort(hashes)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def iter_names(stored: bytes, raw_length: int, count: int, piece: int = 1 << 20) -> Iterator[str]:
    """Yield the names of a table one by one, decompressing a piece at a time.

    Memory stays bounded by `piece` plus one name whatever the header claims;
    every name is checked with check_name, and the totals against the header.
    """
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

    # `buffer[pos:]` is what is not parsed yet; it is compacted only when
    # more data arrives, so each byte is copied O(1) times.
    buffer, pos, previous = b"", 0, b""
    for index in range(1, count + 1):
        end = buffer.find(b"\0", pos + 1)
        while end < 0:
            if len(buffer) - pos > MAX_NAME_BYTES + 2:
                raise ContainerError(f"names table: name {index} is too long")
            data = more()
            if not data:
                raise ContainerError(f"names table: ends before name {index} of {count}")
            buffer, pos = buffer[pos:] + data, 0
            end = buffer.find(b"\0", pos + 1)
        shared = buffer[pos]
        if shared > len(previous):
            raise ContainerError(f"names table: name {index} shares more than the previous name has")
        current = previous[:shared] + buffer[pos + 1 : end]
        pos = end + 1
        try:
            name = current.decode("utf-8")
        except UnicodeDecodeError:
            raise ContainerError(f"names table: name {index} is not UTF-8") from None
        problem = check_name(name)
        if problem:
            raise ContainerError(f"names table: unsafe name {name!r} ({problem})")
        previous = current
        yield name
    if pos != len(buffer) or more() or produced != raw_length or not decompressor.eof or decompressor.unused_data:
        raise ContainerError(f"names table: does not end where the header says ({raw_length} bytes, {count} names)")


def decode_table(stored: bytes, raw_length: int, count: int) -> list[str]:
    """Every name of a table, checked, and no two alike."""
    names = list(iter_names(stored, raw_length, count))
    if len(set(names)) != len(names):
        raise ContainerError("names table: duplicate names")
    return names


def unpack_problem(name: str) -> str | None:
    """Why `name` cannot be stored so that unpack can write it, or None: the stored name and the
    .png name unpack writes for it must both be safe (pack checks this; unpack --test too)."""
    problem = check_name(name)
    if problem is None and not name.endswith(".png"):
        problem = check_name(output_name(name))
        if problem:
            problem = f"the file unpack would write for it: {problem}"
    return problem


# Characters a name may hold that change or hide what a person reads: C1 controls, line and
# paragraph separators, and the bidirectional formatting characters (a name could show as another).
_HIDDEN = re.compile("[\u0080-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)


def pack_problem(name: str) -> str | None:
    """Why pack refuses to store `name`, or None: unpack_problem's rules, and a name that shows as what it is
    and unpacks on every common system (NFC, no hidden or direction-changing characters, nothing Windows
    cannot create). Readers still accept older files' names that break only these extra rules."""
    problem = unpack_problem(name)
    if problem:
        return problem
    if _HIDDEN.search(name):
        return "invisible or direction-changing character in name"
    if unicodedata.normalize("NFC", name) != name:
        return "name is not in Unicode normal form NFC"
    for part in output_name(name).split("/"):
        if part.endswith((".", " ")) or name.split("/")[-1].endswith((".", " ")):
            return "a name part ends with a dot or a space (Windows cannot create it)"
        if part.split(".")[0].upper() in _WINDOWS_RESERVED:
            return f"{part.split('.')[0]!r} is a device name on Windows"
    return None


def output_name(name: str) -> str:
    """The file name unpack writes for a stored name: the same path, its suffix (if any) replaced by .png."""
    folder, _, base = name.rpartition("/")
    dot = base.rfind(".")
    stem = base[:dot] if dot > 0 else base
    return f"{folder}/{stem}.png" if folder else f"{stem}.png"
