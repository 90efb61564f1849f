"""The .aec container's bytes, both ways: Writer and Reader, every field validated.

Byte layout in docs/FORMAT.md. The writer emits Header.pack(), the names
table, then chunk_record() for each chunk. Reading checks each length and
count against what may follow before allocating, and each checksum before
trusting the bytes it covers.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from .checksums import chunk_blocks
from .errors import ContainerError, InputError
from .names import NAMES_CODEC as NAMES_LZMA_FRONT

MAGIC = b"\x89AEC\r\n\x1a\n"  # PNG-style: high bit, CR-LF, ^Z and LF catch text-mode damage
VERSION_MAJOR = 1
VERSION_MINOR = 1  # 1.1 appends the decoded pixels' checksums to the header; files without them stay 1.0
# 2.0: per-image flags 8 (residual) and 16 (rescued) and the residual after the latents; written only for
# files that have such images, so that every other file stays readable by 1.x readers.
VERSION_RESIDUAL = 2
READABLE_MAJORS = (VERSION_MAJOR, VERSION_RESIDUAL)
MAX_RESIDUAL_BYTES_PER_PIXEL = 2  # generous: an adaptive coder spends about 1 byte on a pixel of noise
_PREFIX = struct.Struct("<BBH")  # major, minor, header body length
_BODY = struct.Struct("<32sHHHBBIIIIBIII")
_CHUNK = struct.Struct("<IIII")  # images, flags length, latents length, CRC-32
MAX_CHUNK_IMAGES = 1 << 20
FILE_HAS_LABELS = 1 << 0  # header flag: every chunk's image record carries an int32 label per image
MAX_SYMBOL_BYTES = 8  # generous bound on coded bytes per latent (24-bit symbol + 32-bit escape)
SPOOL_IN_MEMORY = 64 << 20  # coded chunks wait in memory up to this size, then in a temporary file
PIXEL_CRC32 = 1  # header extension (1.1): CRC-32 of each chunk's decoded pixels follows
# Header extension (1.2, 2.1), after the chunks' checksums: a checksum for each block of BLOCK_IMAGES images
# (entropy coder 2), so that a reader which decodes one block to extract an image can check it alone.
BLOCK_CRC32 = 2
MAX_BODY = 0xFFFF  # the prefix holds the header body length in 16 bits
MAX_PIXEL_CRCS = (MAX_BODY - _BODY.size - 1) // 4  # files with more chunks go without pixel checksums


@dataclass
class Header:
    fingerprint: bytes
    height: int
    width: int
    latents: int
    quality: int
    coder_id: int
    image_count: int
    chunk_size: int
    chunk_count: int
    flags: int
    names_codec: int
    names_stored_length: int
    names_raw_length: int
    names_crc: int
    # Each chunk's pixel checksum (chunk_pixel_crc), or None.
    pixel_crcs: tuple[int, ...] | None = None
    # Each block's checksum (checksums.block_pixel_crcs), chunk by chunk, or None; only beside pixel_crcs.
    block_crcs: tuple[int, ...] | None = None
    major: int = VERSION_MAJOR  # VERSION_RESIDUAL when some image has a residual or was rescued

    def pack(self) -> bytes:
        body = _BODY.pack(
            self.fingerprint,
            self.height,
            self.width,
            self.latents,
            self.quality,
            self.coder_id,
            self.image_count,
            self.chunk_size,
            self.chunk_count,
            self.flags,
            self.names_codec,
            self.names_stored_length,
            self.names_raw_length,
            self.names_crc,
        )
        minor = 0
        if self.pixel_crcs is not None:
            body += struct.pack(f"<B{len(self.pixel_crcs)}I", PIXEL_CRC32, *self.pixel_crcs)
            minor = 1 if self.major == VERSION_MAJOR else 0  # 2.0 has the extension from the start
            if self.block_crcs is not None:
                body += struct.pack(f"<B{len(self.block_crcs)}I", BLOCK_CRC32, *self.block_crcs)
                minor += 1
        prefix = _PREFIX.pack(self.major, minor, len(body))
        return MAGIC + prefix + body + struct.pack("<I", zlib.crc32(prefix + body))

    def validate(self, where: str) -> None:
        if not (1 <= self.height <= 4096 and 1 <= self.width <= 4096):
            raise ContainerError(f"{where}: header: bad image geometry {self.height}x{self.width}")
        if not 1 <= self.latents <= 4096:
            raise ContainerError(f"{where}: header: bad latent count {self.latents}")
        if not 1 <= self.chunk_size <= MAX_CHUNK_IMAGES:
            raise ContainerError(f"{where}: header: bad chunk size {self.chunk_size}")
        expected_chunks = -(-self.image_count // self.chunk_size)
        if self.chunk_count != expected_chunks:
            raise ContainerError(f"{where}: header: {self.chunk_count} chunks cannot hold {self.image_count} images")
        if self.names_codec != NAMES_LZMA_FRONT:
            raise ContainerError(f"{where}: header: unknown names codec {self.names_codec}")
        if self.names_raw_length < self.image_count * 3:
            raise ContainerError(f"{where}: header: names table too short for {self.image_count} images")


def header_size(body_length: int = _BODY.size) -> int:
    return len(MAGIC) + _PREFIX.size + body_length + 4


def chunk_record(images: int, info: bytes, latents: bytes) -> bytes:
    """One chunk as stored: counts, lengths, CRC-32, per-image info, coded latents."""
    head = struct.pack("<III", images, len(info), len(latents))
    crc = zlib.crc32(latents, zlib.crc32(info, zlib.crc32(head)))
    return head + struct.pack("<I", crc) + info + latents


CHUNK_HEAD_SIZE = _CHUNK.size


class Writer:
    """Writes one container: chunks as they are coded, then header, names and chunks in file order.

    The header and names table need the final count and names, known only
    once every input has been read (some may be skipped); the coded chunks
    are small (see benchmarks/RESULTS.md), so they wait in a spool that
    moves to a temporary file past SPOOL_IN_MEMORY and memory stays flat.
    """

    def __init__(self):
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self.chunk_count = 0
        self._pixel_crcs: list[int | None] = []
        self._block_crcs: list[list[int] | None] = []
        self.major = VERSION_MAJOR

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self._spool.close()

    def add_chunk(
        self,
        images: int,
        info: bytes,
        latents: bytes,
        pixel_crc: int | None = None,
        format_2: bool = False,
        block_crcs: list[int] | None = None,
    ) -> None:
        """Append a chunk; pixel_crc, the CRC-32 of its decoded pixels, goes into the header (1.1)
        when every chunk has one, and so do block_crcs (block_pixel_crcs; entropy coder 2), one for each
        block. format_2: the chunk has residual or rescued images."""
        if format_2:
            self.major = VERSION_RESIDUAL
        self._spool.write(chunk_record(images, info, latents))
        self.chunk_count += 1
        self._pixel_crcs.append(pixel_crc)
        self._block_crcs.append(block_crcs)

    def finish(self, out: BinaryIO, header: Header, names_blob: bytes) -> tuple[int, int]:
        """Write the whole container to `out`: (header bytes, payload bytes)."""
        crcs, blocks = self._pixel_crcs, self._block_crcs
        if crcs and None not in crcs and len(crcs) <= MAX_PIXEL_CRCS:
            header = dataclasses.replace(header, pixel_crcs=tuple(crcs))
            if None not in blocks and _BODY.size + 2 + 4 * (len(crcs) + sum(map(len, blocks))) <= MAX_BODY:
                header = dataclasses.replace(header, block_crcs=tuple(c for chunk in blocks for c in chunk))
        header = dataclasses.replace(header, major=self.major)
        head = header.pack()
        out.write(head)
        out.write(names_blob)
        payload = self._spool.tell()
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, out)
        return len(head), payload


class Reader:
    """Reads a container from a binary stream, verifying as it goes.

    `size` (bytes from the start of the container to its end) lets every
    length be checked against what remains before anything is read.
    """

    def __init__(self, stream: BinaryIO, size: int, where: str = "input"):
        self.stream, self.size, self.where = stream, size, where
        self.pos = 0
        self.header = self._read_header()
        self.names_offset = self.pos
        self.names_blob = self._read(self.header.names_stored_length, "names table")
        if zlib.crc32(self.names_blob) != self.header.names_crc:
            raise ContainerError(f"{where}: names table: CRC-32 mismatch (damaged)")
        self.payload_offset = self.pos
        if self.header.chunk_count * _CHUNK.size > self.size - self.pos:
            raise ContainerError(
                f"{where}: {self.header.chunk_count} chunks cannot fit in the {self.size - self.pos} bytes left (truncated?)"
            )

    def _read(self, n: int, what: str) -> bytes:
        if n > self.size - self.pos:
            raise ContainerError(
                f"{self.where}: {what}: needs {n} bytes, only {self.size - self.pos} left (truncated?)"
            )
        data = self.stream.read(n)
        if len(data) != n:
            raise ContainerError(f"{self.where}: {what}: file ended early (truncated)")
        self.pos += n
        return data

    def _read_header(self) -> Header:
        where = self.where
        magic = self._read_prefix_bytes(len(MAGIC))
        if magic != MAGIC:
            if magic[:4] == MAGIC[:4]:
                raise ContainerError(f"{where}: damaged signature (line endings altered by a text-mode transfer?)")
            raise ContainerError(f"{where}: not an .aec file (bad signature)")
        prefix = self._read(_PREFIX.size, "header")
        major, minor, body_length = _PREFIX.unpack(prefix)
        if major not in READABLE_MAJORS:
            raise ContainerError(
                f"{where}: format version {major}.{minor} is not supported "
                f"(this aec reads {VERSION_MAJOR}.x and {VERSION_RESIDUAL}.x); upgrade aec"
            )
        if body_length < _BODY.size:
            raise ContainerError(f"{where}: header: length {body_length} too short")
        body = self._read(body_length, "header")
        (crc,) = struct.unpack("<I", self._read(4, "header checksum"))
        if zlib.crc32(prefix + body) != crc:
            raise ContainerError(f"{where}: header: CRC-32 mismatch (damaged)")
        # A newer minor version may append fields; this reader ignores those it does not know.
        header = Header(*_BODY.unpack_from(body), major=major)
        header.validate(where)
        self.version = f"{major}.{minor}"
        if (minor >= 1 or major >= VERSION_RESIDUAL) and len(body) > _BODY.size and body[_BODY.size] == PIXEL_CRC32:
            end = _BODY.size + 1 + 4 * header.chunk_count
            if len(body) < end:
                raise ContainerError(f"{where}: header: pixel checksums for {header.chunk_count} chunks do not fit")
            header.pixel_crcs = struct.unpack_from(f"<{header.chunk_count}I", body, _BODY.size + 1)
            if len(body) > end and body[end] == BLOCK_CRC32:
                header.block_crcs = self._block_crcs(body, end + 1, header)
        return header

    def _block_crcs(self, body: bytes, at: int, header: Header) -> tuple[int, ...]:
        full, last = divmod(header.image_count, header.chunk_size)
        count = full * chunk_blocks(header.chunk_size) + (chunk_blocks(last) if last else 0)
        if len(body) < at + 4 * count:
            raise ContainerError(f"{self.where}: header: block checksums for {count} blocks do not fit")
        return struct.unpack_from(f"<{count}I", body, at)

    def _read_prefix_bytes(self, n: int) -> bytes:
        data = self.stream.read(min(n, self.size))
        self.pos += len(data)
        if len(data) < n:
            if data and not MAGIC.startswith(data):
                raise ContainerError(f"{self.where}: not an .aec file (bad signature)")
            raise ContainerError(f"{self.where}: too short to be an .aec file ({self.size} bytes)")
        return data

    def check_capacity(self, min_latent_bytes: float) -> None:
        """Refuse a header that claims more images than the file's bytes can code.

        `min_latent_bytes` is the fewest bytes the model's tables can spend
        on one image; a hostile count would otherwise make readers allocate
        for images that cannot exist.
        """
        h = self.header
        # Chunk heads take 16 bytes each, and each chunk may code up to 16
        # bytes below the bound (see chunks()): the two cancel.
        room = self.size - self.payload_offset
        if h.image_count * min_latent_bytes > room:
            raise ContainerError(
                f"{self.where}: header: {h.image_count} images cannot fit in "
                f"{self.size - self.payload_offset} bytes of chunks (damaged or truncated)"
            )

    def chunks(
        self, min_latent_bytes: float = 0.0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, bytes | None, bytes | None]]:
        """Yield (image count, per-image info bytes, latent bytes) for each chunk, every one verified.

        A chunk for whose index `wanted` says no is stepped over unread: (image count, None, None).
        """
        h = self.header
        remaining = h.image_count
        for index in range(h.chunk_count):
            wanted_here = wanted is None or wanted(index)
            images, info, latents = self._chunk(index, min(h.chunk_size, remaining), min_latent_bytes, wanted_here)
            remaining -= images
            yield images, info, latents
        if self.pos != self.size:
            raise ContainerError(f"{self.where}: {self.size - self.pos} unexpected bytes after the last chunk")

    def chunk_offsets(self, min_latent_bytes: float = 0.0) -> np.ndarray:
        """int64 [chunks]: where each chunk starts, from its head alone (lengths checked, nothing else read)."""
        offsets = np.zeros(self.header.chunk_count, np.int64)
        self.stream.seek(self.payload_offset)
        self.pos = self.payload_offset
        remaining = self.header.image_count
        for index in range(self.header.chunk_count):
            offsets[index] = self.pos
            images, _, _ = self._chunk(index, min(self.header.chunk_size, remaining), min_latent_bytes, False)
            remaining -= images
        if self.pos != self.size:
            raise ContainerError(f"{self.where}: {self.size - self.pos} unexpected bytes after the last chunk")
        return offsets

    def chunk_at(self, index: int, offset: int, min_latent_bytes: float = 0.0) -> tuple[int, bytes, bytes]:
        """Chunk `index`, which chunk_offsets found at `offset`, read and verified."""
        h = self.header
        self.stream.seek(offset)
        self.pos = offset
        return self._chunk(index, min(h.chunk_size, h.image_count - index * h.chunk_size), min_latent_bytes, True)

    def _chunk(self, index: int, expected: int, min_latent_bytes: float, read: bool):
        h = self.header
        what = f"chunk {index + 1} of {h.chunk_count}"
        head = self._read(_CHUNK.size, what)
        images, flags_length, length, crc = _CHUNK.unpack(head)
        if images != expected:
            raise ContainerError(f"{self.where}: {what}: holds {images} images, expected {expected} (damaged)")
        per_image = h.latents * MAX_SYMBOL_BYTES
        if h.major >= VERSION_RESIDUAL:
            per_image += h.height * h.width * MAX_RESIDUAL_BYTES_PER_PIXEL
        if flags_length > images * 26 + 64 or length > images * per_image + 64:
            raise ContainerError(f"{self.where}: {what}: implausible length (damaged)")
        if min_latent_bytes and length < images * min_latent_bytes - 16:
            raise ContainerError(f"{self.where}: {what}: {length} bytes cannot hold {images} images (damaged)")
        if not read:
            self._skip(flags_length + length, what)
            return images, None, None
        flags = self._read(flags_length, what)
        latents = self._read(length, what)
        if zlib.crc32(latents, zlib.crc32(flags, zlib.crc32(head[:12]))) != crc:
            raise ContainerError(f"{self.where}: {what}: CRC-32 mismatch (damaged)")
        return images, flags, latents

    def _skip(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise ContainerError(
                f"{self.where}: {what}: needs {n} bytes, only {self.size - self.pos} left (truncated?)"
            )
        self.stream.seek(n, io.SEEK_CUR)
        self.pos += n


def open_container(source: str | os.PathLike | BinaryIO | bytes) -> Reader:
    """A Reader over bytes, a binary stream (read whole: stdin) or a file path."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return Reader(io.BytesIO(data), len(data), "data")
    if hasattr(source, "read"):
        name = getattr(source, "name", "input")
        where = "stdin" if name == "<stdin>" else str(name)
        # The signature first: a stream that is no .aec file (`< /dev/zero`) is refused before it is read on.
        head = source.read(len(MAGIC))
        if head != MAGIC:
            return Reader(io.BytesIO(head), len(head), where)  # raises, naming what is wrong
        data = head + source.read()
        return Reader(io.BytesIO(data), len(data), where)
    path = Path(source)
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an .aec file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot open ({err.strerror})") from None
    try:
        return Reader(f, size, str(path))
    except BaseException:
        f.close()
        raise
