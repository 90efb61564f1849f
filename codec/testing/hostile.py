"""Builders of damaged and malicious .aec files, shared by the tests, the fuzz corpus and the robustness benchmark."""

from __future__ import annotations

import io
import lzma
import struct
import zlib

import numpy as np

from .. import runtime
from ..checksums import chunk_pixel_crc, image_crcs
from ..container import _BODY, _PREFIX, FILE_HAS_LABELS, MAGIC, Header, Writer
from ..entropy import CODER_RANGE, LatentCoder
from ..modelfile import Model
from ..names import _LZMA_FILTERS, NAMES_CODEC

_FAST_LZMA = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20, "preset": 1}]  # what readers accept, made quickly
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


def crafted_file(
    model: Model,
    latents: np.ndarray,
    raw: bytes,
    chunk_size: int | None = None,
    records: list[bytes] | None = None,
    labelled: bool = False,
    pixel_crcs: bool = True,
    major: int = 1,
) -> bytes:
    """A container built by hand, every CRC right: `latents` (int32 [N, latents]) coded in chunks of
    `chunk_size` (all in one by default), the front-coded names `raw` (raw_names), each chunk's record
    (records[i], empty by default). pixel_crcs: the 1.1 checksums of what the latents decode to, computed
    from the distinct latent rows only, so that a million copies of one image cost one decode."""
    count = len(latents)
    chunk_size = chunk_size or max(count, 1)
    coder = LatentCoder(model)
    # Rows told apart by a 64-bit hash (np.unique over rows sorts a million of them slowly).
    weights = np.random.default_rng(0).integers(1, 2**63, latents.shape[1], dtype=np.uint64) | np.uint64(1)
    keys = (latents.astype(np.int64).view(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    crcs = image_crcs(runtime.decode_latents(model, latents[first]))[inverse.reshape(-1)]
    writer = Writer()
    for index, start in enumerate(range(0, count, chunk_size)):
        part = latents[start : start + chunk_size]
        info = records[index] if records else b""
        writer.add_chunk(len(part), info, coder.encode(part), chunk_pixel_crc(crcs[start : start + chunk_size]))
    writer.major = major
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_FAST_LZMA)
    header = Header(
        fingerprint=model.decoder_fingerprint, height=model.image_shape[0], width=model.image_shape[1],
        latents=model.latents, quality=model.quality, coder_id=CODER_RANGE, image_count=count, chunk_size=chunk_size,
        chunk_count=writer.chunk_count, flags=FILE_HAS_LABELS if labelled else 0, names_codec=NAMES_CODEC,
        names_stored_length=len(blob), names_raw_length=len(raw), names_crc=zlib.crc32(blob),
    )  # fmt: skip
    if not pixel_crcs:
        writer._pixel_crcs = [None] * writer.chunk_count
    out = io.BytesIO()
    with writer:
        writer.finish(out, header, blob)
    return out.getvalue()


def likeliest_latents(model: Model, count: int) -> np.ndarray:
    """int32 [count, latents]: every latent at its likeliest value, the cheapest image to code (so the most
    images a file of a given size can claim), all `count` alike."""
    best = (model.table_low + model.table_counts.argmax(axis=1)).astype(np.int32)
    return np.tile(best, (count, 1))


def numbered_names(count: int, length: int = 0) -> bytes:
    """Front-coded names 0, 1, ... (each padded with leading letters to `length` characters if longer),
    sharing no prefix: LZMA makes them small whatever their length."""
    width = len(str(max(count - 1, 0)))
    pad = "n" * max(0, length - width)
    return raw_names([f"{pad}{i:0{width}d}" for i in range(count)])
