"""aec.entropy: integer latents to range-coded bytes and back."""

from __future__ import annotations

import numpy as np
import pytest

from aec.entropy import BLOCK_IMAGES, CODER_BLOCKS, CODER_RANGE, LatentCoder, coder_for
from aec.errors import ContainerError
from aec.modelfile import Dense, Model

INT32_MIN, INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)
LOW = np.array([-2, -2, 0], np.int32)
COUNTS = np.array(
    [  # 5 coded values per latent, then the escape count
        [10, 40, 400, 40, 10, 1],
        [1, 1, 1, 1, 1, 1],
        [500, 100, 20, 4, 1, 3],
    ],
    np.uint32,
)


def make_model(low=LOW, counts=COUNTS) -> Model:
    n = len(low)
    rng = np.random.default_rng(0)
    return Model(
        name="t",
        quality=1,
        image_shape=(2, 2),
        encoder=[Dense(rng.normal(size=(4, n)).astype(np.float32), np.zeros(n, np.float32), "linear")],
        decoder=[Dense(rng.normal(size=(n, 4)).astype(np.float32), np.zeros(4, np.float32), "sigmoid")],
        quant_step=np.ones(n, np.float32),
        table_low=np.asarray(low, np.int32),
        table_counts=np.asarray(counts, np.uint32),
    )


@pytest.fixture(scope="module")
def coder() -> LatentCoder:
    return LatentCoder(make_model())


def round_trip(coder: LatentCoder, latents: np.ndarray) -> bytes:
    data = coder.encode(latents)
    assert isinstance(data, bytes)
    assert len(data) % 4 == 0
    decoded = coder.decode(data, len(latents))
    assert decoded.dtype == np.int32
    assert decoded.shape == latents.shape
    assert decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, latents)
    return data


def test_random_latents_inside_the_tables_round_trip(coder):
    rng = np.random.default_rng(1)
    latents = (rng.integers(0, 5, size=(1000, 3)) + LOW).astype(np.int32)
    assert latents.min() == -2 and latents.max() == 4
    round_trip(coder, latents)


def test_table_edges_round_trip_without_escape(coder):
    # low and low + 4 are the last values inside each table; low - 1 and low + 5 are escapes.
    inside = np.array([LOW, LOW + 4], np.int32)
    outside = np.array([LOW - 1, LOW + 5], np.int32)
    round_trip(coder, inside)
    round_trip(coder, outside)
    big_inside = np.repeat(inside, 500, axis=0)
    big_outside = np.repeat(outside, 500, axis=0)
    # Escapes carry 32 extra bits each, so they must cost far more than in-table values.
    assert len(coder.encode(big_outside)) > len(coder.encode(big_inside)) + 1000 * 3 * 3


@pytest.mark.parametrize(
    "value",
    [
        INT32_MIN,
        INT32_MIN + 1,
        INT32_MAX,
        INT32_MAX - 1,
        -3,
        5,
        -1000,
        1000,
        65535,
        65536,
        -65536,
        -65537,
        2**30,
        -(2**30),
    ],
)
def test_values_far_outside_the_tables_round_trip_via_escapes(coder, value):
    latents = np.array([[value, value, value], [0, value, 1]], np.int32)
    round_trip(coder, latents)


def test_mixed_escapes_keep_their_columns_and_order(coder):
    rng = np.random.default_rng(2)
    latents = (rng.integers(0, 5, size=(300, 3)) + LOW).astype(np.int32)
    where = rng.random(latents.shape) < 0.2
    latents[where] = rng.integers(INT32_MIN, INT32_MAX, size=int(where.sum()), dtype=np.int64, endpoint=True)
    assert where.sum() > 100
    round_trip(coder, latents)


def test_zero_images(coder):
    data = coder.encode(np.zeros((0, 3), np.int32))
    assert data == b""
    decoded = coder.decode(data, 0)
    assert decoded.shape == (0, 3)
    assert decoded.dtype == np.int32


def test_one_image(coder):
    latents = np.array([[1, -2, 3]], np.int32)
    data = round_trip(coder, latents)
    assert 4 <= len(data) <= 16


def test_encoding_is_deterministic_across_coders():
    rng = np.random.default_rng(4)
    latents = (rng.integers(-5, 8, size=(500, 3))).astype(np.int32)
    first = LatentCoder(make_model()).encode(latents)
    assert LatentCoder(make_model()).encode(latents) == first
    assert LatentCoder(make_model()).encode(latents.copy(order="F")) == first


def test_different_tables_give_different_bytes():
    latents = np.tile(np.array([[0, 0, 0]], np.int32), (100, 1))
    other = COUNTS.copy()
    other[0, 2] = 1
    assert LatentCoder(make_model()).encode(latents) != LatentCoder(make_model(counts=other)).encode(latents)


def test_likely_symbols_cost_less_than_unlikely_ones():
    skewed = np.array([[1, 1, 10**6, 1, 1, 1]] * 3, np.uint32)
    coder = LatentCoder(make_model(counts=skewed))
    likeliest = np.tile(LOW + 2, (10000, 1)).astype(np.int32)
    data = round_trip(coder, likeliest)
    assert len(data) < 0.1 * 10000

    rng = np.random.default_rng(5)
    uniform = (rng.integers(0, 5, size=(10000, 3)) + LOW).astype(np.int32)
    uniform_size = len(round_trip(coder, uniform))
    assert uniform_size > 20 * len(data)


def test_skewed_table_beats_flat_table_on_its_likely_values():
    # Column 0 of COUNTS favours low + 2 (= 0): 400 of 511.
    rng = np.random.default_rng(6)
    p = COUNTS[0, :5] / COUNTS[0, :5].sum()
    latents = np.zeros((20000, 3), np.int32)
    latents[:, 0] = rng.choice(5, size=20000, p=p) - 2
    flat = np.array([[1, 1, 1, 1, 1, 1]] * 3, np.uint32)
    skewed_size = len(round_trip(LatentCoder(make_model()), latents))
    flat_size = len(round_trip(LatentCoder(make_model(counts=flat)), latents))
    # Entropy of column 0 is about 1.05 bits against log2(6) = 2.58 bits flat; columns 1 and 2 cost the same
    # order of bits in both (column 1 is flat in both, column 2 is at its likeliest value in COUNTS).
    assert skewed_size < flat_size - 20000 * 1.2 / 8


@pytest.mark.parametrize(
    "counts",
    [
        COUNTS,
        np.array([[1, 1, 10**6, 1, 1, 1]] * 3, np.uint32),
        np.array([[3, 7, 2, 9, 5, 1]] * 3, np.uint32),
        np.array([[1, 1, 1, 1, 1, 1000]] * 3, np.uint32),  # the escape is the likeliest symbol
    ],
)
def test_min_bytes_per_image_is_a_lower_bound(counts):
    coder = LatentCoder(make_model(counts=counts))
    assert coder.min_bytes_per_image >= 0
    cheapest = np.argmax(counts[:, :-1], axis=1) + LOW
    for n in (1, 100, 10000):
        size = len(coder.encode(np.tile(cheapest, (n, 1)).astype(np.int32)))
        # Reader.chunks() refuses a chunk shorter than this (the 16 is its allowance).
        assert size >= n * coder.min_bytes_per_image - 16


def test_min_bytes_per_image_value():
    flat = np.array([[1, 1, 1, 1, 1, 1]] * 3, np.uint32)
    coder = LatentCoder(make_model(counts=flat))
    assert coder.min_bytes_per_image == pytest.approx(0.95 * 3 * np.log2(6) / 8)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_decode_rejects_stream_that_is_not_whole_words(coder, cut):
    data = coder.encode(np.array([[0, 0, 0], [1, 1, 1]], np.int32))
    with pytest.raises(ContainerError, match="32-bit words"):
        coder.decode(data[:-cut], 2)
    with pytest.raises(ContainerError, match="32-bit words"):
        coder.decode(data + b"\x00" * (4 - cut), 2)


def test_decode_of_random_words_returns_int32_or_raises_container_error(coder):
    rng = np.random.default_rng(7)
    for _ in range(200):
        data = rng.integers(0, 256, size=4 * int(rng.integers(0, 12)), dtype=np.uint8).tobytes()
        count = int(rng.integers(0, 20))
        try:
            decoded = coder.decode(data, count)
        except ContainerError:
            continue
        assert decoded.shape == (count, 3)
        assert decoded.dtype == np.int32


# Entropy coder 2: a chunk cut into blocks of BLOCK_IMAGES images, each its own stream.


@pytest.fixture(scope="module")
def block_coder() -> LatentCoder:
    return LatentCoder(make_model(), CODER_BLOCKS)


@pytest.mark.parametrize("count", [0, 1, BLOCK_IMAGES - 1, BLOCK_IMAGES, BLOCK_IMAGES + 1, 3 * BLOCK_IMAGES + 17])
def test_block_coder_round_trips_any_count(block_coder, count):
    rng = np.random.default_rng(count)
    latents = rng.integers(-2, 3, size=(count, 3)).astype(np.int32)
    latents[rng.random(latents.shape) < 0.01] = INT32_MAX  # escapes in some blocks
    data = block_coder.encode(latents)
    blocks = max(-(-count // BLOCK_IMAGES), 1)
    table = np.frombuffer(data, "<u4", blocks)
    assert 4 * (blocks + int(table.sum())) == len(data)
    np.testing.assert_array_equal(block_coder.decode(data, count), latents)


def test_a_block_is_coder_1_for_its_images(coder, block_coder):
    """Each block's stream is exactly what coder 1 writes for the block's images alone."""
    latents = np.random.default_rng(1).integers(-2, 3, size=(2 * BLOCK_IMAGES + 5, 3)).astype(np.int32)
    pieces = block_coder.blocks(block_coder.encode(latents), len(latents))
    assert [(first, n) for first, n, _ in pieces] == [(0, 1024), (1024, 1024), (2048, 5)]
    for first, n, piece in pieces:
        assert piece == coder.encode(latents[first : first + n])


def test_decode_rows_decodes_only_the_blocks_asked_for(block_coder):
    latents = np.random.default_rng(2).integers(-2, 3, size=(4 * BLOCK_IMAGES, 3)).astype(np.int32)
    data = block_coder.encode(latents)
    rows = np.array([5, 3000, 3001, 7])
    cache: dict = {}
    np.testing.assert_array_equal(block_coder.decode_rows(data, len(latents), rows, cache), latents[rows])
    assert sorted(cache) == [0, 2]  # blocks 1 and 3 were not decoded
    # A damaged block that is not asked for is not read; one that is asked for is an error.
    pieces = block_coder.blocks(data, len(latents))
    damaged = bytearray(data)
    start = len(data) - len(pieces[3][2])
    damaged[start : start + 8] = b"\xff" * 8
    np.testing.assert_array_equal(block_coder.decode_rows(bytes(damaged), len(latents), rows), latents[rows])


def test_residual_symbols_follow_the_last_block(block_coder):
    latents = np.zeros((BLOCK_IMAGES + 3, 3), np.int32)
    extra = np.arange(50, dtype=np.int32) % 7

    def then(encoder, categorical):
        encoder.encode(extra, block_coder.half_word)

    data, bits = block_coder.encode_with(latents, then)
    assert bits > 0
    decoded, decoder = block_coder.decode_stream(data, len(latents))
    np.testing.assert_array_equal(decoded, latents)
    np.testing.assert_array_equal(decoder.decode(block_coder.half_word, len(extra)), extra)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:3],  # shorter than the table
        lambda d: b"\x00\x00\x00\x00" + d[4:],  # the table no longer adds up
        lambda d: np.array([2**31], "<u4").tobytes() + d[4:],  # a huge block length
        lambda d: d + b"\x00" * 4,  # trailing words
    ],
    ids=["short", "table mismatch", "huge length", "trailing"],
)
def test_damaged_block_tables_are_container_errors(block_coder, damage):
    latents = np.ones((2 * BLOCK_IMAGES, 3), np.int32)
    data = damage(block_coder.encode(latents))
    with pytest.raises(ContainerError):
        block_coder.decode(data, len(latents))


def test_unknown_coders_are_refused():
    with pytest.raises(ContainerError, match="unknown entropy coder 3"):
        LatentCoder(make_model(), 3)


def test_pack_writes_coder_2_only_when_a_chunk_holds_more_than_one_block():
    assert coder_for(BLOCK_IMAGES) == CODER_RANGE and coder_for(BLOCK_IMAGES + 1) == CODER_BLOCKS
