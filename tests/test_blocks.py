"""Files with entropy coder 2: chunks of more than 1,024 images coded in blocks that a reader can decode
one at a time. What a user sees must not change: the same pixels, and random reads that decode less."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import aec
from aec.entropy import BLOCK_IMAGES, CODER_BLOCKS, CODER_RANGE
from aec.fileinfo import CODER_NAMES


@pytest.fixture(scope="module")
def many(train_fixture) -> np.ndarray:
    """2,500 digits: the 300 of the fixture, shifted a pixel at a time so that no two are the same."""
    rng = np.random.default_rng(0)
    images = np.concatenate([np.roll(train_fixture, k, axis=2) for k in range(9)])[:2500]
    return images[rng.permutation(len(images))]


@pytest.fixture(scope="module")
def files(tmp_path_factory, many):
    folder = tmp_path_factory.mktemp("blocks")
    np.save(folder / "many.npy", many)
    out = {}
    for name, chunk_size in (("blocks", 4096), ("plain", 1024), ("two chunks", 2048)):
        out[name] = folder / f"{name.replace(' ', '-')}.aec"
        aec.pack([folder / "many.npy"], out[name], chunk_size=chunk_size)
    return out


def test_pack_writes_coder_2_for_big_chunks_and_coder_1_otherwise(files):
    assert aec.info(files["blocks"])["coder"] == CODER_NAMES[CODER_BLOCKS]
    assert aec.info(files["plain"])["coder"] == CODER_NAMES[CODER_RANGE]


def test_both_coders_give_the_same_pixels(files, many):
    blocks, plain = aec.decode(files["blocks"].read_bytes()), aec.decode(files["plain"].read_bytes())
    np.testing.assert_array_equal(blocks, plain)
    assert blocks.shape == many.shape


def test_random_reads_decode_only_their_blocks(files):
    whole = aec.decode(files["two chunks"].read_bytes())
    with aec.open(files["two chunks"], cache_chunks=1) as data:
        assert data._chunk(0)["all"] is not None  # open() decoded the first chunk whole to check its pixels
        np.testing.assert_array_equal(data[[2400, 5, 2399]], whole[[2400, 5, 2399]])
        np.testing.assert_array_equal(data[2100], whole[2100])  # chunk 2: chunk 1 left the cache
        np.testing.assert_array_equal(data[1500], whole[1500])
        entry = data._chunk(0)
        assert entry["all"] is None and sorted(entry["blocks"]) == [1]  # block 1 of chunk 1, nothing else
        np.testing.assert_array_equal(data[::7], whole[::7])


def test_residuals_in_a_coder_2_file(tmp_path, many):
    np.save(tmp_path / "many.npy", many[:1500])
    out = tmp_path / "near.aec"
    aec.pack([tmp_path / "many.npy"], out, max_error=2)
    assert aec.info(out)["coder"] == CODER_NAMES[CODER_BLOCKS]
    decoded = aec.decode(out.read_bytes())
    assert np.abs(decoded.astype(int) - many[:1500]).max() <= 2
    with aec.open(out) as data:
        np.testing.assert_array_equal(data[[1400, 3]], decoded[[1400, 3]])


def test_cat_of_coder_1_and_coder_2_files_is_what_pack_writes(tmp_path, many):
    for half, part in (("a", many[: BLOCK_IMAGES + 500]), ("b", many[BLOCK_IMAGES + 500 :])):
        (tmp_path / half).mkdir()
        for i, image in enumerate(part):
            Image.fromarray(image).save(tmp_path / half / f"{half}{i:05d}.png")
    aec.pack([tmp_path / "a"], tmp_path / "a.aec")  # one chunk of 1,524: coder 2
    aec.pack([tmp_path / "b"], tmp_path / "b.aec")  # one chunk of 976: coder 1
    aec.pack([tmp_path / "a", tmp_path / "b"], tmp_path / "together.aec")
    assert aec.info(tmp_path / "b.aec")["coder"] == CODER_NAMES[CODER_RANGE]
    result = aec.cat([tmp_path / "a.aec", tmp_path / "b.aec"], tmp_path / "ab.aec")
    assert not result.copied_chunks
    assert (tmp_path / "ab.aec").read_bytes() == (tmp_path / "together.aec").read_bytes()
    aec.cat([tmp_path / "b.aec", tmp_path / "a.aec"], tmp_path / "ba.aec")
    np.testing.assert_array_equal(
        aec.decode((tmp_path / "ba.aec").read_bytes()),
        np.concatenate([aec.decode((tmp_path / n).read_bytes()) for n in ("b.aec", "a.aec")]),
    )
