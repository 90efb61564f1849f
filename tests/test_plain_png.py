"""The plain-PNG fast path gives exactly Pillow's pixels, and declines everything it does not handle."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from aec import plain_png

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "digits").glob("*.png"))


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def pillow_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_example_digits_decode_as_pillow_does():
    assert EXAMPLES
    for path in EXAMPLES:
        data = path.read_bytes()
        assert np.array_equal(plain_png.decode(data), pillow_pixels(data)), path


@pytest.mark.parametrize("options", [{}, {"optimize": True}, {"compress_level": 0}, {"compress_level": 9}])
@pytest.mark.parametrize("shape", [(28, 28), (1, 1), (13, 40), (700, 900)])
def test_grayscale_pngs_of_any_size_and_compression(shape, options):
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(Image.fromarray(pixels), **options)
    assert np.array_equal(plain_png.decode(data), pixels)


def test_several_idat_chunks_and_ancillary_chunks():
    pixels = np.random.default_rng(1).integers(0, 256, (600, 600), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by a test")
    data = png_bytes(Image.fromarray(pixels), pnginfo=info, compress_level=0)
    assert data.count(b"IDAT") > 1 and b"tEXt" in data
    assert np.array_equal(plain_png.decode(data), pixels)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "I;16", "1"])
def test_other_modes_go_the_ordinary_way(mode):
    image = Image.fromarray(np.full((28, 28), 200, np.uint8)).convert(mode)
    assert plain_png.decode(png_bytes(image)) is None


def test_transparency_goes_the_ordinary_way():
    data = png_bytes(Image.fromarray(np.arange(784, dtype=np.uint16).reshape(28, 28).astype(np.uint8)), transparency=0)
    assert b"tRNS" in data
    assert plain_png.decode(data) is None


def test_damaged_files_go_the_ordinary_way():
    data = EXAMPLES[0].read_bytes()
    assert plain_png.decode(data[:-12]) is None  # no IEND
    assert plain_png.decode(data[:40]) is None
    assert plain_png.decode(b"") is None
    assert plain_png.decode(b"GIF89a" + data[6:]) is None
    flipped = bytearray(data)
    flipped[40] ^= 1  # inside IDAT: the CRC no longer matches
    assert plain_png.decode(bytes(flipped)) is None


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_interlaced_unknown_critical_and_misplaced_ihdr_go_the_ordinary_way():
    raw = zlib.compress(b"".join(b"\x00" + bytes(28) for _ in range(28)))
    ihdr = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    good = plain_png.SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
    assert np.array_equal(plain_png.decode(good), np.zeros((28, 28), np.uint8))
    interlaced = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 1)
    assert (
        plain_png.decode(
            plain_png.SIGNATURE + _chunk(b"IHDR", interlaced) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")
        )
        is None
    )
    assert (
        plain_png.decode(
            plain_png.SIGNATURE
            + _chunk(b"IHDR", ihdr)
            + _chunk(b"ABCD", b"x")
            + _chunk(b"IDAT", raw)
            + _chunk(b"IEND", b"")
        )
        is None
    )
    assert (
        plain_png.decode(plain_png.SIGNATURE + _chunk(b"IDAT", raw) + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b""))
        is None
    )
    huge = struct.pack(">IIBBBBB", 1 << 16, 1 << 16, 8, 0, 0, 0, 0)  # a bomb: left to Pillow's checks
    assert (
        plain_png.decode(plain_png.SIGNATURE + _chunk(b"IHDR", huge) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b""))
        is None
    )
    short = zlib.compress(bytes(10))  # too little pixel data
    assert (
        plain_png.decode(plain_png.SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", short) + _chunk(b"IEND", b""))
        is None
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_are_declined_or_decoded_as_pillow_does(data):
    original = bytearray(EXAMPLES[0].read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(original)
    fast = plain_png.decode(blob)
    if fast is not None:
        assert np.array_equal(fast, pillow_pixels(blob))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_are_declined_or_decoded_never_raised(blob, with_signature):
    data = (plain_png.SIGNATURE + blob) if with_signature else blob
    result = plain_png.decode(data)
    assert result is None or (result.dtype == np.uint8 and result.ndim == 2)


def test_blank_is_a_plain_png_pillow_reads_as_black():
    data = plain_png.blank(28, 30)
    assert np.array_equal(plain_png.decode(data), np.zeros((28, 30), np.uint8))
    assert np.array_equal(pillow_pixels(data), np.zeros((28, 30), np.uint8))


def _filtered_png(rows: bytes, width: int, height: int, tail: bytes = b"") -> bytes:
    """A PNG around these filtered rows (each: a filter type byte, then the row), zlib-compressed."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(rows) + tail
    return plain_png.SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _random_filtered(rng, width: int, height: int, types=(0, 1, 2, 3, 4)) -> bytes:
    return b"".join(bytes([int(rng.choice(types))]) + rng.bytes(width) for _ in range(height))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_decode_many_gives_what_decode_gives_file_by_file(seed):
    """Every filter type on every row (an Average first row included, which decode_many leaves to decode),
    sizes mixed (70x60 is over BATCH_PIXELS), and files decode declines or Pillow refuses among them."""
    rng = np.random.default_rng(seed)
    files = []
    for _ in range(int(rng.integers(1, 40))):
        width, height = [(28, 28), (5, 3), (1, 1), (28, 28), (17, 40), (70, 60)][int(rng.integers(0, 6))]
        rows = _random_filtered(rng, width, height)
        kind = int(rng.integers(0, 12))
        if kind == 0:  # a filter type that does not exist
            rows = bytes([5]) + rows[1:]
        elif kind == 1:  # too few rows
            rows = rows[: -(width + 1)]
        files.append(_filtered_png(rows, width, height, tail=b"junk" if kind == 2 else b""))
        if kind == 3:
            files.append(EXAMPLES[int(rng.integers(0, len(EXAMPLES)))].read_bytes())
        elif kind == 4:
            files.append(b"not a png")
    one_by_one = [plain_png.decode(data) for data in files]
    together = plain_png.decode_many(files)
    assert len(together) == len(files)
    for alone, batched, data in zip(one_by_one, together, files):
        assert (alone is None) == (batched is None)
        if alone is not None:
            assert np.array_equal(alone, batched)
            assert np.array_equal(batched, pillow_pixels(data))


@pytest.mark.parametrize("first", [0, 1, 2, 3, 4])
def test_decode_many_first_rows_of_each_filter_type(first):
    rng = np.random.default_rng(first)
    files = [_filtered_png(bytes([first]) + rng.bytes(28) + _random_filtered(rng, 28, 27), 28, 28) for _ in range(5)]
    together = plain_png.decode_many(files)
    for data, pixels in zip(files, together):
        assert np.array_equal(pixels, pillow_pixels(data))


def test_decode_many_of_the_example_digits_and_nothing():
    files = [path.read_bytes() for path in EXAMPLES]
    for data, pixels in zip(files, plain_png.decode_many(files)):
        assert np.array_equal(pixels, pillow_pixels(data))
    assert plain_png.decode_many([]) == []
