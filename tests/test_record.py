"""aec.record: the per-image record (flags, resize geometry, labels) of a chunk."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from aec import record
from aec.errors import ContainerError

G = record.GEOMETRY_FIELDS
NO_GEOMETRY = np.zeros((0, G), np.uint16)


def test_flag_bits_are_distinct_single_bits():
    assert [record.FLAG_CONVERTED, record.FLAG_INVERTED, record.FLAG_RESIZED] == [1, 2, 4]


def test_all_zero_flags_are_stored_as_nothing():
    assert record.encode_image_info(np.zeros(1000, np.uint8), NO_GEOMETRY) == b""
    flags, geometry, _ = record.decode_image_info(b"", 1000)
    assert flags.dtype == np.uint8 and flags.shape == (1000,) and not flags.any()
    assert geometry.shape == (0, G)
    assert record.decode_image_info(b"", 0)[0].shape == (0,)


def test_nonzero_flags_round_trip():
    rng = np.random.default_rng(3)
    flags = rng.choice(np.array([0, 1, 2, 3], np.uint8), size=4096)  # no FLAG_RESIZED: no geometry
    flags[0] = record.FLAG_CONVERTED | record.FLAG_INVERTED
    stored = record.encode_image_info(flags, NO_GEOMETRY)
    assert stored != b""
    assert zlib.decompress(stored) == flags.tobytes()
    decoded, geometry, _ = record.decode_image_info(stored, 4096)
    np.testing.assert_array_equal(decoded, flags)
    assert geometry.shape == (0, G)


def test_flags_with_geometry_round_trip():
    flags = np.array(
        [0, record.FLAG_RESIZED, record.FLAG_CONVERTED, record.FLAG_RESIZED | record.FLAG_INVERTED], np.uint8
    )
    geometry = np.array([np.arange(G) + 1, np.arange(G) * 1000 + 65000 % 7], np.uint16)
    geometry[1, 0] = 65535
    stored = record.encode_image_info(flags, geometry)
    assert zlib.decompress(stored) == flags.tobytes() + geometry.astype("<u2").tobytes()
    decoded, decoded_geometry, _ = record.decode_image_info(stored, 4)
    np.testing.assert_array_equal(decoded, flags)
    np.testing.assert_array_equal(decoded_geometry, geometry)
    assert decoded_geometry.dtype == np.uint16


def test_encode_image_info_needs_one_geometry_row_per_resized_image():
    flags = np.array([record.FLAG_RESIZED, record.FLAG_RESIZED], np.uint8)
    with pytest.raises(ValueError):
        record.encode_image_info(flags, np.zeros((1, G), np.uint16))


def test_sparse_flags_compress():
    flags = np.zeros(4096, np.uint8)
    flags[17] = record.FLAG_CONVERTED
    stored = record.encode_image_info(flags, NO_GEOMETRY)
    assert len(stored) < 64
    decoded, _, _ = record.decode_image_info(stored, 4096)
    assert decoded[17] == record.FLAG_CONVERTED
    assert np.count_nonzero(decoded) == 1


@pytest.mark.parametrize("count", [0, 2, 4, 100])
def test_decode_image_info_rejects_wrong_count(count):
    stored = record.encode_image_info(np.array([1, 0, 1], np.uint8), NO_GEOMETRY)
    with pytest.raises(ContainerError, match="image flags"):
        record.decode_image_info(stored, count)


def test_decode_image_info_rejects_damaged_data():
    stored = record.encode_image_info(np.array([1, 0, 1], np.uint8), NO_GEOMETRY)
    for bad in (stored[:-1], stored + b"x", b"\x00garbage"):
        with pytest.raises(ContainerError, match="image flags"):
            record.decode_image_info(bad, 3)


def test_decode_image_info_rejects_unknown_flag_bits():
    stored = zlib.compress(bytes([1, 32, 0]))
    with pytest.raises(ContainerError, match="unknown flag bits"):
        record.decode_image_info(stored, 3)


def test_decode_image_info_rejects_missing_geometry():
    flags = bytes([record.FLAG_RESIZED, 0])
    with pytest.raises(ContainerError, match="geometry"):
        record.decode_image_info(zlib.compress(flags + b"\x00" * (2 * G - 2)), 2)  # one byte pair short
    with pytest.raises(ContainerError, match="geometry"):
        record.decode_image_info(zlib.compress(flags), 2)


def test_residual_images_carry_their_max_error_and_the_residual_bytes():
    flags = np.array([0, record.FLAG_RESIDUAL | record.FLAG_RESCUED, record.FLAG_RESIDUAL, 0], np.uint8)
    stored = record.encode_image_info(flags, NO_GEOMETRY, None, np.array([40, 0], np.uint8), 1234)
    decoded = record.decode_record(stored, 4)
    assert decoded.flags.tolist() == flags.tolist()
    assert decoded.max_errors.tolist() == [40, 0]
    assert decoded.residual_bytes == 1234
    with pytest.raises(ValueError, match="one max error"):
        record.encode_image_info(flags, NO_GEOMETRY, None, np.array([1], np.uint8))
    raw = zlib.decompress(stored)
    with pytest.raises(ContainerError, match="with a residual"):
        record.decode_record(zlib.compress(raw[:-1]), 4)  # one byte short
