"""Builders of damaged and malicious .aec files, shared by the tests, the fuzz corpus and the robustness benchmark."""

from __future__ import annotations

import lzma
import struct
import zlib

import numpy as np

from ..container import _BODY, _PREFIX, MAGIC
from ..names import _LZMA_FILTERS

HEADER_START = len(MAGIC) + _PREFIX.size
HEADER_FIELDS = [
    "fingerprint",
    "height",
    "width",
    "latents",
    "quality",
    "coder_id",
    "image_count",
    "chunk_size",
    "chunk_count",
    "flags",
    "names_codec",
    "names_stored_length",
    "names_raw_length",
    "names_crc",
]
FIELD_FORMATS = ["32s", "H", "H", "H", "B", "B", "I", "I", "I", "I", "B", "I", "I", "I"]  # as aec.container._BODY


def _body_length(data: bytes) -> int:
    return struct.unpack_from("<H", data, HEADER_START - 2)[0]


def with_header(data: bytes, **fields) -> bytes:
    """`data` with header fields replaced and the header CRC made right again (so the CRC does not hide the field).

    Fields a newer minor version appends (the pixel checksums) are kept as they are."""
    length = _body_length(data)
    values = list(_BODY.unpack_from(data, HEADER_START))
    for key, value in fields.items():
        values[HEADER_FIELDS.index(key)] = value
    body = _BODY.pack(*values) + data[HEADER_START + _BODY.size : HEADER_START + length]
    prefix = data[len(MAGIC) : HEADER_START]
    crc = struct.pack("<I", zlib.crc32(prefix + body))
    return data[:HEADER_START] + body + crc + data[HEADER_START + length + 4 :]


def names_offset(data: bytes | None = None) -> int:
    """Where the names table starts: after the header body of `data` (a 1.0 header's when None)."""
    return HEADER_START + (_BODY.size if data is None else _body_length(data)) + 4


def with_raw_names(data: bytes, raw: bytes) -> bytes:
    """`data` with its names table replaced by `raw` (front-coded bytes, unchecked), lengths and CRCs fixed."""
    values = _BODY.unpack_from(data, HEADER_START)
    old_length = values[HEADER_FIELDS.index("names_stored_length")]
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    start = names_offset(data)
    rebuilt = data[:start] + blob + data[start + old_length :]
    return with_header(rebuilt, names_stored_length=len(blob), names_raw_length=len(raw), names_crc=zlib.crc32(blob))


def raw_names(names: list[str]) -> bytes:
    """Front-code names without any safety check (0 shared bytes each)."""
    return b"".join(b"\0" + n.encode("utf-8", "surrogatepass") + b"\0" for n in names)


def mutations(data: bytes, rng: np.random.Generator, count: int):
    """Yield `count` damaged variants: truncations, bit flips, byte runs, and header fields set to odd values."""
    kinds = ("truncate", "flip", "bytes", "field", "insert")
    for _ in range(count):
        kind = kinds[rng.integers(len(kinds))]
        if kind == "truncate":
            yield kind, data[: rng.integers(len(data))]
        elif kind == "flip":
            b = bytearray(data)
            for _ in range(rng.integers(1, 4)):
                i = rng.integers(len(b))
                b[i] ^= 1 << rng.integers(8)
            yield kind, bytes(b)
        elif kind == "bytes":
            b = bytearray(data)
            i = rng.integers(len(b))
            n = int(rng.integers(1, 9))
            b[i : i + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            yield kind, bytes(b)
        elif kind == "insert":
            i = rng.integers(len(data))
            yield kind, data[:i] + rng.integers(0, 256, rng.integers(1, 9), dtype=np.uint8).tobytes() + data[i:]
        else:
            field = HEADER_FIELDS[1 + rng.integers(len(HEADER_FIELDS) - 2)]
            fmt = FIELD_FORMATS[HEADER_FIELDS.index(field)]
            top = {"H": 0xFFFF, "B": 0xFF, "I": 0xFFFFFFFF}[fmt]
            value = int(rng.choice([0, 1, 2, top, top - 1, rng.integers(0, top + 1)]))
            yield f"field:{field}", with_header(data, **{field: value})
