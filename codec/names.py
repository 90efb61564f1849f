"""The names table (relative POSIX paths, compressed) and per-image flags.

Names are front-coded (each stores how many leading bytes it shares with
the one before, then the rest) and the result is LZMA-compressed. Sequential
names like 00000.png, 00001.png ... shrink to a few hundredths of a byte
each this way, where zlib alone needs two bytes; the stdlib has no front
coder, and these dozen lines are simpler than another dependency.
"""

from __future__ import annotations

import lzma
import posixpath
import re
import zlib

import numpy as np

from .errors import ContainerError, InputError

_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20, "preset": 9 | lzma.PRESET_EXTREME}]
_LZMA_DECODE_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
MAX_NAME_BYTES = 4096
NAMES_CODEC = 1  # front coding + raw LZMA2, as below
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")

# Per-image flag bits (one byte per image).
FLAG_CONVERTED = 1 << 0  # colour/alpha/palette/16-bit converted to 8-bit grayscale
FLAG_INVERTED = 1 << 1  # black-on-white input inverted for the model
FLAG_RESIZED = 1 << 2  # resized to the model's geometry


def check_name(name: str) -> str | None:
    """Why `name` is not a safe stored name, or None if it is.

    Safe: a relative POSIX path, no empty, '.' or '..' parts, no drive
    prefix, no backslash, no control characters, at most MAX_NAME_BYTES.
    """
    if not name:
        return "empty name"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return "name too long"
    if _FORBIDDEN.search(name):
        return "control character or backslash in name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "empty, '.' or '..' path component"
    if posixpath.normpath(name) != name:
        return "path is not normalised"
    return None


def encode_table(names: list[str]) -> tuple[bytes, int]:
    """(compressed table, its raw length). Raw: per name, shared-prefix byte, rest, NUL."""
    raw = bytearray()
    previous = b""
    for name in names:
        problem = check_name(name)
        if problem:
            raise InputError(f"{name!r}: cannot be stored ({problem})")
        current = name.encode("utf-8")
        shared = 0
        limit = min(len(previous), len(current), 255)
        while shared < limit and previous[shared] == current[shared]:
            shared += 1
        raw.append(shared)
        raw += current[shared:]
        raw.append(0)
        previous = current
    return lzma.compress(bytes(raw), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS), len(raw)


def decode_table(stored: bytes, raw_length: int, count: int) -> list[str]:
    """Inverse of encode_table; every name is checked with check_name."""
    try:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_DECODE_FILTERS)
        raw = decompressor.decompress(stored, max_length=raw_length + 1)
    except lzma.LZMAError as err:
        raise ContainerError(f"names table: cannot decompress ({err})") from None
    if len(raw) != raw_length:
        raise ContainerError(f"names table: {len(raw)} bytes where the header says {raw_length}")
    names, previous, pos = [], b"", 0
    for i in range(count):
        end = raw.find(b"\0", pos + 1)
        if pos >= len(raw) or end < 0:
            raise ContainerError(f"names table: ends before name {i + 1} of {count}")
        shared = raw[pos]
        if shared > len(previous):
            raise ContainerError(f"names table: name {i + 1} shares more than the previous name has")
        current = previous[:shared] + raw[pos + 1:end]
        try:
            name = current.decode("utf-8")
        except UnicodeDecodeError:
            raise ContainerError(f"names table: name {i + 1} is not UTF-8") from None
        problem = check_name(name)
        if problem:
            raise ContainerError(f"names table: unsafe name {name!r} ({problem})")
        names.append(name)
        previous, pos = current, end + 1
    if pos != len(raw):
        raise ContainerError("names table: trailing bytes after the last name")
    if len(set(names)) != len(names):
        raise ContainerError("names table: duplicate names")
    return names


def encode_flags(flags: np.ndarray) -> bytes:
    """A chunk's per-image flags: empty when all are zero (the usual case), else zlib of one byte each."""
    if not flags.any():
        return b""
    return zlib.compress(flags.astype(np.uint8).tobytes(), 9)


def decode_flags(stored: bytes, count: int) -> np.ndarray:
    if not stored:
        return np.zeros(count, np.uint8)
    try:
        decompressor = zlib.decompressobj()
        raw = decompressor.decompress(stored, count + 1)
    except zlib.error as err:
        raise ContainerError(f"image flags: cannot decompress ({err})") from None
    if len(raw) != count or not decompressor.eof:
        raise ContainerError(f"image flags: {len(raw)} flags for {count} images")
    return np.frombuffer(raw, dtype=np.uint8).copy()
