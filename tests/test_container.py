"""aec.container: writing and reading .aec containers, and refusing every kind of damage."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest

from aec import container, names, record
from aec.container import MAGIC, Header, Reader, chunk_record, header_size
from aec.errors import ContainerError

NAMES = ["a.png", "b.png", "sub/c.png"]
FINGERPRINT = bytes(range(32))
CHUNKS = [  # (images, per-image info, latent bytes)
    (
        2,
        record.encode_image_info(np.array([record.FLAG_CONVERTED, 0], np.uint8), np.zeros((0, 10), np.uint16)),
        bytes(range(40, 52)),
    ),
    (1, b"", b"\x01\x02\x03\x04"),
]
PREFIX_AT = len(MAGIC)  # major, minor, body length (<BBH)
BODY_AT = PREFIX_AT + 4


def make_header(table=NAMES, **changes) -> tuple[Header, bytes]:
    blob, raw_length = names.encode_table(table)
    fields = dict(
        fingerprint=FINGERPRINT,
        height=28,
        width=28,
        latents=16,
        quality=3,
        coder_id=1,
        image_count=3,
        chunk_size=2,
        chunk_count=2,
        flags=0,
        names_codec=names.NAMES_CODEC,
        names_stored_length=len(blob),
        names_raw_length=raw_length,
        names_crc=zlib.crc32(blob),
    )
    fields.update(changes)
    return Header(**fields), blob


def build(header: Header | None = None, blob: bytes | None = None, chunks=CHUNKS) -> bytes:
    if header is None:
        header, blob = make_header()
    out = io.BytesIO()
    with container.Writer() as writer:
        for images, info, latents in chunks:
            writer.add_chunk(images, info, latents)
        writer.finish(out, header, blob)
    return out.getvalue()


def read_all(data: bytes, size: int | None = None, where: str = "input"):
    reader = Reader(io.BytesIO(data), len(data) if size is None else size, where)
    return reader, list(reader.chunks())


def refix_header_crc(data: bytes) -> bytes:
    (body_length,) = struct.unpack_from("<H", data, PREFIX_AT + 2)
    end = BODY_AT + body_length
    crc = zlib.crc32(data[PREFIX_AT:end])
    return data[:end] + struct.pack("<I", crc) + data[end + 4 :]


GOOD = build()


# --- round trip ----------------------------------------------------------------


def test_round_trip_every_header_field_and_chunk():
    header, blob = make_header()
    reader, chunks = read_all(build(header, blob))
    for f in dataclasses.fields(Header):
        assert getattr(reader.header, f.name) == getattr(header, f.name), f.name
    assert reader.names_blob == blob
    assert names.decode_table(reader.names_blob, reader.header.names_raw_length, 3) == NAMES
    assert chunks == CHUNKS
    assert reader.pos == reader.size == len(GOOD)


def test_layout_offsets_and_sizes():
    header, blob = make_header()
    reader, _ = read_all(GOOD)
    assert header_size() == len(header.pack()) == 8 + 4 + 69 + 4
    assert reader.names_offset == header_size()
    assert reader.payload_offset == header_size() + len(blob)
    assert GOOD.startswith(MAGIC)
    assert GOOD[PREFIX_AT : PREFIX_AT + 2] == bytes([container.VERSION_MAJOR, 0])  # no pixel checksums: 1.0
    expected_chunks = sum(container.CHUNK_HEAD_SIZE + len(i) + len(l) for _, i, l in CHUNKS)
    assert len(GOOD) == header_size() + len(blob) + expected_chunks


def test_pixel_checksums_make_a_1_1_header_and_round_trip():
    header, blob = make_header()
    out = io.BytesIO()
    with container.Writer() as writer:
        for (images, info, latents), crc in zip(CHUNKS, (0xDEADBEEF, 7)):
            writer.add_chunk(images, info, latents, pixel_crc=crc)
        writer.finish(out, header, blob)
    data = out.getvalue()
    assert data[PREFIX_AT : PREFIX_AT + 2] == bytes([1, container.VERSION_MINOR]) == bytes([1, 1])
    assert struct.unpack_from("<H", data, PREFIX_AT + 2)[0] == 69 + 1 + 4 * len(CHUNKS)
    reader, chunks = read_all(data)
    assert reader.header.pixel_crcs == (0xDEADBEEF, 7) and reader.version == "1.1" and chunks == CHUNKS
    # A chunk without a checksum means none are recorded: a 1.0 file.
    out = io.BytesIO()
    with container.Writer() as writer:
        writer.add_chunk(*CHUNKS[0], pixel_crc=1)
        writer.add_chunk(*CHUNKS[1])
        writer.finish(out, header, blob)
    assert read_all(out.getvalue())[0].header.pixel_crcs is None


def test_block_checksums_make_a_1_2_header_that_older_readers_skip():
    header, blob = make_header()  # two chunks of 2 and 1 images: one block each
    out = io.BytesIO()
    with container.Writer() as writer:
        for (images, info, latents), crc, blocks in zip(CHUNKS, (5, 7), ([11], [13])):
            writer.add_chunk(images, info, latents, pixel_crc=crc, block_crcs=blocks)
        writer.finish(out, header, blob)
    data = out.getvalue()
    assert data[PREFIX_AT : PREFIX_AT + 2] == bytes([1, 2])
    assert struct.unpack_from("<H", data, PREFIX_AT + 2)[0] == 69 + 1 + 4 * 2 + 1 + 4 * 2
    reader, chunks = read_all(data)
    assert (reader.header.pixel_crcs, reader.header.block_crcs, reader.version) == ((5, 7), (11, 13), "1.2")
    assert chunks == CHUNKS
    # A 1.1 reader's view: the pixel checksums, and the block section is bytes it skips (version rule).
    body = data[PREFIX_AT + 4 : PREFIX_AT + 4 + 69 + 1 + 8]
    assert struct.unpack_from("<B2I", body, 69) == (container.PIXEL_CRC32, 5, 7)
    # A block section cut short is damage, named.
    length = struct.unpack_from("<H", data, PREFIX_AT + 2)[0]
    body = data[PREFIX_AT + 4 : PREFIX_AT + 4 + length][:-4]
    prefix = struct.pack("<BBH", 1, 2, len(body))
    short = MAGIC + prefix + body + struct.pack("<I", zlib.crc32(prefix + body)) + data[PREFIX_AT + 8 + length :]
    with pytest.raises(ContainerError, match="block checksums for 2 blocks do not fit"):
        Reader(io.BytesIO(short), len(short))
    # A chunk without block checksums means none are recorded.
    out = io.BytesIO()
    with container.Writer() as writer:
        writer.add_chunk(*CHUNKS[0], pixel_crc=1, block_crcs=[2])
        writer.add_chunk(*CHUNKS[1], pixel_crc=3)
        writer.finish(out, header, blob)
    assert read_all(out.getvalue())[0].header.block_crcs is None
    assert read_all(out.getvalue())[0].version == "1.1"


def test_chunk_record_layout():
    record = chunk_record(2, b"ii", b"llll")
    images, info_length, latent_length, crc = struct.unpack_from("<IIII", record)
    assert (images, info_length, latent_length) == (2, 2, 4)
    assert crc == zlib.crc32(record[:12] + b"ii" + b"llll")
    assert record[16:] == b"iillll"


def test_empty_container_round_trips():
    header, blob = make_header(table=[], image_count=0, chunk_count=0)
    reader, chunks = read_all(build(header, blob, chunks=[]))
    assert reader.header.image_count == 0
    assert chunks == []


def test_many_chunks_round_trip():
    count, size = 10, 3
    table = [f"{i}.png" for i in range(count)]
    header, blob = make_header(table=table, image_count=count, chunk_size=size, chunk_count=4)
    chunks = [(min(size, count - s), b"", bytes([s]) * 4) for s in range(0, count, size)]
    reader, read = read_all(build(header, blob, chunks))
    assert read == chunks
    assert [c[0] for c in read] == [3, 3, 3, 1]


# --- signature and version ---------------------------------------------------


def test_bad_magic():
    for bad in (b"PNG\r\n\x1a\n\x00" + GOOD[8:], b"\x89PNG\r\n\x1a\n" + GOOD[8:], b"x" * 200):
        with pytest.raises(ContainerError, match="signature"):
            read_all(bad)


def test_text_mode_line_ending_damage_is_named():
    damaged = GOOD.replace(b"\r\n", b"\n", 1)
    assert damaged[:4] == MAGIC[:4] and damaged[:8] != MAGIC
    with pytest.raises(ContainerError, match="text-mode"):
        read_all(damaged)


@pytest.mark.parametrize("data", [b"", b"\x89", MAGIC[:7]])
def test_too_short_to_be_a_container(data):
    with pytest.raises(ContainerError, match="too short"):
        read_all(data)


def test_short_non_container_is_bad_signature():
    with pytest.raises(ContainerError, match="signature"):
        read_all(b"hello")


@pytest.mark.parametrize("major", [0, 3, 255])
def test_other_major_version_is_not_supported(major):
    data = bytearray(GOOD)
    data[PREFIX_AT] = major
    with pytest.raises(ContainerError, match=rf"version {major}\.0 is not supported"):
        read_all(refix_header_crc(bytes(data)))


def test_newer_minor_version_with_extra_header_fields_is_read():
    header, blob = make_header()
    packed = header.pack()
    body = packed[BODY_AT:-4]
    extra = b"future fields"
    prefix = struct.pack("<BBH", container.VERSION_MAJOR, container.VERSION_MINOR + 1, len(body) + len(extra))
    newer_header = MAGIC + prefix + body + extra + struct.pack("<I", zlib.crc32(prefix + body + extra))
    data = newer_header + GOOD[len(packed) :]
    reader, chunks = read_all(data)
    assert reader.header == header
    assert reader.names_offset == header_size(len(body) + len(extra))
    assert reader.names_blob == blob
    assert chunks == CHUNKS


def test_header_body_shorter_than_known_fields_is_refused():
    data = bytearray(GOOD)
    struct.pack_into("<H", data, PREFIX_AT + 2, 68)
    with pytest.raises(ContainerError, match="header: length 68 too short"):
        read_all(refix_header_crc(bytes(data)))


# --- damage anywhere ------------------------------------------------------------


def test_every_single_bit_flip_raises_container_error():
    for offset in range(len(GOOD)):
        for bit in range(8):
            damaged = bytearray(GOOD)
            damaged[offset] ^= 1 << bit
            try:
                read_all(bytes(damaged))
            except ContainerError:
                continue
            except Exception as err:  # noqa: BLE001 - the point is which type escapes
                pytest.fail(f"flip at byte {offset} bit {bit}: {type(err).__name__}: {err}")
            pytest.fail(f"flip at byte {offset} bit {bit} was not detected")


def test_truncation_at_every_offset_raises_container_error():
    for cut in range(len(GOOD)):
        with pytest.raises(ContainerError):
            read_all(GOOD[:cut])
        # The same, where the caller believed the full size (a stream that ends early).
        with pytest.raises(ContainerError):
            read_all(GOOD[:cut], size=len(GOOD))


def test_trailing_byte_raises_container_error():
    with pytest.raises(ContainerError, match="1 unexpected bytes after the last chunk"):
        read_all(GOOD + b"\x00")
    with pytest.raises(ContainerError, match="4 unexpected bytes"):
        read_all(GOOD + MAGIC[:4])


def test_error_messages_name_the_damaged_part():
    header, blob = make_header()
    names_at = header_size()
    chunk2_at = len(GOOD) - (container.CHUNK_HEAD_SIZE + len(CHUNKS[1][1]) + len(CHUNKS[1][2]))
    cases = {
        BODY_AT + 40: "header: CRC-32 mismatch",
        names_at + 1: "names table: CRC-32 mismatch",
        names_at + len(blob) + 20: "chunk 1 of 2: CRC-32 mismatch",
        len(GOOD) - 1: "chunk 2 of 2: CRC-32 mismatch",
        chunk2_at + 12: "chunk 2 of 2: CRC-32 mismatch",  # the chunk's stored CRC itself
    }
    for offset, message in cases.items():
        damaged = bytearray(GOOD)
        damaged[offset] ^= 0x01
        with pytest.raises(ContainerError, match=rf"^x\.aec: {message}"):
            read_all(bytes(damaged), where="x.aec")
    with pytest.raises(ContainerError, match=r"^x\.aec: names table: needs"):
        read_all(GOOD[: names_at + 3], where="x.aec")
    with pytest.raises(ContainerError, match=r"^x\.aec: chunk 2 of 2: needs 4 bytes"):
        read_all(GOOD[:-1], where="x.aec")


def test_chunks_are_verified_before_they_are_yielded():
    damaged = bytearray(GOOD)
    damaged[-1] ^= 0x80  # the last chunk's latents
    reader = Reader(io.BytesIO(bytes(damaged)), len(damaged))
    chunks = reader.chunks()
    assert next(chunks) == CHUNKS[0]  # the first chunk is intact and comes out
    with pytest.raises(ContainerError, match="chunk 2 of 2"):
        next(chunks)


# --- implausible headers (CRC made right, so only validation can catch them) -----


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(height=0), "bad image geometry"),
        (dict(width=4097), "bad image geometry"),
        (dict(latents=0), "bad latent count"),
        (dict(latents=4097), "bad latent count"),
        (dict(chunk_size=0), "bad chunk size"),
        (dict(chunk_size=(1 << 20) + 1, chunk_count=1), "bad chunk size"),
        (dict(chunk_count=3), "3 chunks cannot hold 3 images"),
        (dict(chunk_count=1), "1 chunks cannot hold 3 images"),
        (dict(names_codec=2), "unknown names codec 2"),
        (dict(names_raw_length=8), "names table too short for 3 images"),
    ],
)
def test_header_validation(changes, message):
    header, blob = make_header(**changes)
    with pytest.raises(ContainerError, match=rf"^f: header: {message}"):
        read_all(build(header, blob), where="f")


def test_header_claiming_more_chunks_than_fit_fails_before_reading_chunks():
    count = 10**6
    header, blob = make_header(image_count=count, chunk_size=1, chunk_count=count, names_raw_length=3 * count)
    data = build(header, blob, chunks=[])
    with pytest.raises(ContainerError, match=r"1000000 chunks cannot fit in the 0 bytes left"):
        Reader(io.BytesIO(data), len(data))


def test_chunk_with_wrong_image_count():
    data = build(chunks=[CHUNKS[0], (2, b"", b"\x00" * 4)])
    with pytest.raises(ContainerError, match="chunk 2 of 2: holds 2 images, expected 1"):
        read_all(data)


def test_chunk_with_implausible_lengths():
    huge_info = build(chunks=[(2, b"\x00" * (2 * 26 + 65), b"")] + CHUNKS[1:])
    with pytest.raises(ContainerError, match="chunk 1 of 2: implausible length"):
        read_all(huge_info)
    huge_latents = build(chunks=[(2, b"", b"\x00" * (2 * 16 * container.MAX_SYMBOL_BYTES + 65))] + CHUNKS[1:])
    with pytest.raises(ContainerError, match="chunk 1 of 2: implausible length"):
        read_all(huge_latents)
    # Right at the bounds is fine.
    at_bounds = [(2, b"\x00" * (2 * 21 + 64), b"\x00" * (2 * 16 * container.MAX_SYMBOL_BYTES + 64))] + CHUNKS[1:]
    assert read_all(build(chunks=at_bounds))[1] == at_bounds


def test_chunk_shorter_than_the_coder_minimum_is_refused():
    reader = Reader(io.BytesIO(GOOD), len(GOOD))
    chunks = reader.chunks(min_latent_bytes=14.5)  # chunk 1: 12 bytes < 2 * 14.5 - 16 = 13
    with pytest.raises(ContainerError, match="chunk 1 of 2: 12 bytes cannot hold 2 images"):
        next(chunks)
    _, read = read_all(GOOD)  # without a minimum the same file reads
    assert read == CHUNKS
    reader = Reader(io.BytesIO(GOOD), len(GOOD))
    assert list(reader.chunks(min_latent_bytes=14.0)) == CHUNKS  # 2 * 14 - 16 = 12: exactly enough


def test_check_capacity():
    reader = Reader(io.BytesIO(GOOD), len(GOOD))
    room = len(GOOD) - reader.payload_offset
    reader.check_capacity(room / 3)  # exactly fits
    with pytest.raises(ContainerError, match=rf"header: 3 images cannot fit in {room} bytes"):
        reader.check_capacity(room / 3 + 0.01)
