"""Files with entropy coder 2: chunks of more than 1,024 images coded in blocks that a reader can decode
one at a time. What a user sees must not change: the same pixels, and random reads that decode less."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import aec
from aec.container import open_container
from aec.entropy import BLOCK_IMAGES, CODER_BLOCKS, CODER_RANGE
from aec.fileinfo import CODER_NAMES
from aec.record import FLAG_RESIDUAL


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


def _members(path) -> list:
    return list(aec.list_members(path))


def test_coder_2_files_carry_a_checksum_for_each_block(files):
    blocks, two, plain = (open_container(files[k]) for k in ("blocks", "two chunks", "plain"))
    assert blocks.version in ("1.2", "2.1") and len(blocks.header.block_crcs) == 3  # one chunk of 2,500
    assert two.version in ("1.2", "2.1") and len(two.header.block_crcs) == 3  # 2,048 (two blocks) and 452
    assert plain.version in ("1.1", "2.0") and plain.header.block_crcs is None  # coder 1: a chunk is a block
    assert aec.info(files["blocks"])["block_checksums"] and not aec.info(files["plain"])["block_checksums"]


def _with_block_crc(data: bytes, block: int, value: int) -> bytes:
    """`data` with block checksum `block` (from 0) set to `value`, the header's CRC made right again."""
    length = struct.unpack_from("<H", data, 10)[0]
    body = bytearray(data[12 : 12 + length])
    header = open_container(data).header
    at = len(body) - 4 * len(header.block_crcs) + 4 * block
    struct.pack_into("<I", body, at, value)
    crc = struct.pack("<I", zlib.crc32(data[8:12] + bytes(body)))
    return data[:12] + bytes(body) + crc + data[16 + length :]


def test_extracting_members_decodes_and_checks_only_their_blocks(tmp_path, files):
    whole = aec.decode(files["blocks"].read_bytes())
    names = [m.name for m in _members(files["blocks"])]
    picks = [3, 1023, 1024, 2047, 2499]
    aec.unpack(files["blocks"], tmp_path / "some.npy", format="npy", members=[names[i] for i in picks])
    np.testing.assert_array_equal(np.load(tmp_path / "some.npy"), whole[picks])
    # Block 2's checksum made wrong (the header's CRC right): a member of block 2 is refused, naming the
    # block, and one of block 1 is not, so only its own block was decoded and checked.
    damaged = tmp_path / "damaged.aec"
    data = files["blocks"].read_bytes()
    damaged.write_bytes(_with_block_crc(data, 1, open_container(data).header.block_crcs[1] ^ 1))
    with pytest.raises(aec.ContainerError, match=r"chunk 1, block 2: the decoded pixels differ"):
        aec.unpack(damaged, tmp_path / "b2.npy", format="npy", members=[names[1500]])
    assert not (tmp_path / "b2.npy").exists()
    aec.unpack(damaged, tmp_path / "b1.npy", format="npy", members=[names[5]])
    np.testing.assert_array_equal(np.load(tmp_path / "b1.npy"), whole[[5]])


def test_members_with_a_residual_come_from_their_whole_chunk(tmp_path, many):
    np.save(tmp_path / "many.npy", many[:2100])
    for name, options in (("floor", {"min_psnr": 30.0}), ("near", {"max_error": 3})):
        out = tmp_path / f"{name}.aec"
        aec.pack([tmp_path / "many.npy"], out, **options)
        assert open_container(out).header.block_crcs is not None
        members = _members(out)
        with_residual = [i for i, m in enumerate(members) if m.flags & FLAG_RESIDUAL]
        without = [i for i, m in enumerate(members) if not m.flags & FLAG_RESIDUAL]
        assert with_residual and (without or name == "near")
        picks = sorted(with_residual[:2] + with_residual[-1:] + without[:1] + without[-1:])
        aec.unpack(out, tmp_path / f"{name}.npy", format="npy", members=[members[i].name for i in picks])
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), aec.decode(out.read_bytes())[picks])


def test_cat_copies_the_block_checksums(tmp_path, many):
    for half, part in (("a", many[:1200]), ("b", many[1200:])):
        (tmp_path / half).mkdir()
        for i, image in enumerate(part):
            Image.fromarray(image).save(tmp_path / half / f"{half}{i:05d}.png")
        aec.pack([tmp_path / half], tmp_path / f"{half}.aec", chunk_size=1200)  # a: 1,200; b: 1,200 and 100
    aec.pack([tmp_path / "a", tmp_path / "b"], tmp_path / "together.aec", chunk_size=1200)
    result = aec.cat([tmp_path / "a.aec", tmp_path / "b.aec"], tmp_path / "ab.aec")
    assert result.copied_chunks
    assert (tmp_path / "ab.aec").read_bytes() == (tmp_path / "together.aec").read_bytes()
    assert len(open_container(tmp_path / "ab.aec").header.block_crcs) == 2 + 2 + 1


def test_members_of_a_labelled_coder_2_file_keep_their_labels_and_names(tmp_path, many):
    np.savez(tmp_path / "labelled.npz", images=many[:1500], labels=np.arange(1500) % 10)
    out = tmp_path / "labelled.aec"
    aec.pack([tmp_path / "labelled.npz"], out)
    assert open_container(out).header.block_crcs is not None
    aec.unpack(out, tmp_path / "all.npz", format="npz")
    names = [m.name for m in _members(out)]
    picks = [7, 1030, 1499]
    aec.unpack(out, tmp_path / "some.npz", format="npz", members=[names[i] for i in picks])
    with np.load(tmp_path / "all.npz") as whole, np.load(tmp_path / "some.npz") as some:
        np.testing.assert_array_equal(some["images"], whole["images"][picks])
        np.testing.assert_array_equal(some["labels"], [7, 1030 % 10, 1499 % 10])
        assert list(some["names"]) == [names[i] for i in picks]
