"""Damaged and malicious containers: only AecError, never a crash, never a write outside the target."""

import os
import struct

import numpy as np
import pytest

import aec
from aec.errors import AecError, ContainerError, ModelError, OutputError
from aec.testing.hostile import HEADER_START, mutations, names_offset, raw_names, with_header, with_raw_names


@pytest.fixture(scope="module")
def small(example_images) -> bytes:
    """A real container: 20 digits in 3 chunks (8, 8, 4)."""
    return aec.encode(example_images[:20], chunk_size=8)


def read_all(data: bytes) -> None:
    aec.info(data)
    aec.verify(data)


def test_the_pristine_file_reads(small):
    assert aec.info(small)["images"] == 20
    assert aec.verify(small)["images"] == 20


def test_truncation_at_every_offset(small):
    for cut in range(len(small)):
        with pytest.raises(ContainerError):
            read_all(small[:cut])


def test_every_single_bit_flip_is_caught(small):
    for offset in range(len(small)):
        for bit in range(8):
            damaged = bytearray(small)
            damaged[offset] ^= 1 << bit
            with pytest.raises(AecError):
                read_all(bytes(damaged))


def test_flips_are_named(small):
    def message(offset: int) -> str:
        damaged = bytearray(small)
        damaged[offset] ^= 0x10
        with pytest.raises(ContainerError) as err:
            aec.verify(bytes(damaged))
        return str(err.value)

    assert "signature" in message(2)
    assert "header" in message(HEADER_START + 40)
    assert "names table" in message(names_offset(small) + 2)
    first_chunk = names_offset(small) + aec.info(small)["names_bytes"]
    assert "chunk 1 of 3" in message(first_chunk + 20)
    assert "chunk 3 of 3" in message(len(small) - 3)


def test_header_fields_with_fixed_crc(small):
    """Odd values in every field, with the header CRC recomputed: refused with one AecError, or harmless."""
    for field, values in {
        "height": [0, 1, 27, 4097, 65535],
        "width": [0, 29, 65535],
        "latents": [0, 31, 33, 65535],
        "coder_id": [0, 2, 255],
        "image_count": [0, 19, 21, 2**32 - 1],
        "chunk_size": [0, 1, 7, 9, 2**32 - 1],
        "chunk_count": [0, 2, 4, 2**32 - 1],
        "names_codec": [0, 2],
        "names_stored_length": [0, 1, 2**32 - 1],
        "names_raw_length": [0, 1, 10**9, 2**32 - 1],
        "names_crc": [0],
    }.items():
        for value in values:
            with pytest.raises(AecError):
                read_all(with_header(small, **{field: value}))
    # Quality and unknown file flags do not change how the file decodes.
    assert aec.verify(with_header(small, quality=200, flags=0x80))["images"] == 20
    with pytest.raises(ModelError, match="not shipped"):
        read_all(with_header(small, fingerprint=bytes(32)))


def test_huge_claimed_counts_fail_fast_without_memory(small):
    # 4 billion images in 4096 chunks of a million: the header is self-consistent,
    # but the file's bytes cannot hold them; refused before any allocation.
    forged = with_header(small, image_count=2**32 - 1, chunk_size=2**20, chunk_count=4096)
    with pytest.raises(ContainerError):
        aec.verify(forged)


def test_version_rules(small):
    newer_major = small[:8] + bytes([3]) + small[9:]
    with pytest.raises(ContainerError, match="version 3.1 is not supported"):
        aec.info(newer_major)
    # A newer minor version may append header fields: still readable.
    import zlib

    body_length = struct.unpack_from("<H", small, 10)[0]
    body = small[HEADER_START : HEADER_START + body_length] + b"future"
    prefix = bytes([1, 9]) + struct.pack("<H", len(body))
    rebuilt = small[:8] + prefix + body + struct.pack("<I", zlib.crc32(prefix + body)) + small[names_offset(small) :]
    assert aec.verify(rebuilt)["images"] == 20


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "a/../../evil.png",
        "/etc/evil.png",
        "C:/evil.png",
        "C:evil.png",
        "a\\..\\evil.png",
        "a/./b.png",
        "a//b.png",
        "nul\x00byte.png",
        "new\nline.png",
        "",
        ".",
        "..",
        "a/" + "x" * 5000,
    ],
)
def test_escaping_names_are_refused_before_writing(tmp_path, small, name):
    names = [f"{i:02d}.png" for i in range(19)] + [name]
    evil = with_raw_names(small, raw_names(names))
    out = tmp_path / "out"
    with pytest.raises(ContainerError, match="names table"):
        aec.unpack(evil, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(ContainerError):
        aec.verify(evil)


def test_duplicate_and_colliding_names_are_refused(tmp_path, small):
    for names in ([f"{i}.png" for i in range(19)] + ["0.png"], [f"{i}.png" for i in range(19)] + ["0.jpg"]):
        with pytest.raises(ContainerError):
            aec.unpack(with_raw_names(small, raw_names(names)), tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_decode_in_memory_refuses_duplicate_names(small):
    data = with_raw_names(small, raw_names([f"{i}.png" for i in range(19)] + ["3.png"]))
    with pytest.raises(ContainerError, match="duplicate names"):
        aec.decode(data)
    assert len(aec.decode(with_raw_names(small, raw_names([f"{i}.png" for i in range(20)])))) == 20


def test_symlink_in_target_folder_cannot_carry_output_outside(tmp_path, small):
    names = [f"sub/{i:02d}.png" for i in range(20)]
    data = with_raw_names(small, raw_names(names))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "sub")
    with pytest.raises(OutputError, match="outside|symbolic link"):
        aec.unpack(data, out)
    assert list(elsewhere.iterdir()) == []


def test_random_mutations_only_raise_aec_errors(small):
    rng = np.random.default_rng(1)
    outcomes = {"refused": 0, "read": 0}
    for kind, damaged in mutations(small, rng, 3000):
        try:
            read_all(damaged)
            outcomes["read"] += 1
        except AecError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 2500


# --- whatever pack writes, unpack --test passes and unpack writes ------------------------


def test_array_inputs_whose_names_would_escape_are_refused(tmp_path, example_images):
    np.save(tmp_path / "..npy", example_images[:3])
    np.save(tmp_path / "ok.npy", example_images[:3])
    with pytest.raises(aec.InputError, match=r"\.\.npy: its images cannot be stored as"):
        aec.pack([tmp_path / "..npy", tmp_path / "ok.npy"], tmp_path / "x.aec")
    assert not (tmp_path / "x.aec").exists()


def test_a_name_whose_unpacked_file_name_is_too_long_cannot_be_stored():
    """Pack checks every stored name with unpack_problem (a real folder this deep exceeds PATH_MAX here)."""
    from aec.name_rules import unpack_problem

    long_stem = "a/" + "n" * 4091  # 4,093 bytes: storable, but unpack would write a 4,097-byte name
    assert unpack_problem(long_stem) == "the file unpack would write for it: name too long"
    assert unpack_problem("a/" + "n" * 4087 + ".jpg") is None  # its .png name is as long: fine
    assert unpack_problem("fine.png") is None and unpack_problem("../x.png") is not None


def test_unpack_test_refuses_what_unpack_would(tmp_path, small):
    long_name = "a/" * 1 + "n" * 4091  # 4,093 bytes, no suffix: unpack would write a 4,097-byte .png name
    crafted = with_raw_names(small, raw_names([long_name] + [f"{i}.png" for i in range(1, 20)]))
    with pytest.raises(ContainerError, match="cannot be unpacked"):
        aec.verify(crafted)
    with pytest.raises(AecError):
        aec.unpack(crafted, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_a_symlink_loop_in_the_target_is_a_one_line_error(tmp_path, example_digits):
    source = tmp_path / "src" / "loop1"
    source.mkdir(parents=True)
    (source / "x.png").write_bytes((example_digits / "00000_7.png").read_bytes())
    packed = tmp_path / "l.aec"
    aec.pack([tmp_path / "src"], packed)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink("loop2", out / "loop1")
    os.symlink("loop1", out / "loop2")
    with pytest.raises(OutputError, match="refusing to write"):
        aec.unpack(packed, out)
    assert sorted(p.name for p in out.iterdir()) == ["loop1", "loop2"]


def test_info_refuses_a_count_the_bytes_cannot_hold_before_reading_names():
    """30 million names that a few kilobytes of LZMA expand to, in a file whose bytes hold 48 images:
    reading every name would take half a minute; the count is refused first."""
    import lzma
    import time
    import zlib
    from pathlib import Path

    legacy = (Path(__file__).resolve().parent / "conformance" / "digits-q3-e0.aec").read_bytes()  # a 1.0 file
    count, chunk_size = 30_000_000, 1 << 20
    raw = b"\0a\0" * count  # the name "a" again and again, front-coded
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    start = names_offset(legacy)
    stored = aec.info(legacy)["names_bytes"]
    rebuilt = legacy[:start] + blob + legacy[start + stored :] + bytes(16 * 30)  # room for the chunk heads
    crafted = with_header(
        rebuilt, image_count=count, chunk_size=chunk_size, chunk_count=-(-count // chunk_size),
        names_stored_length=len(blob), names_raw_length=len(raw), names_crc=zlib.crc32(blob),
    )  # fmt: skip
    began = time.perf_counter()
    with pytest.raises(ContainerError, match="cannot fit"):
        aec.info(crafted)
    assert time.perf_counter() - began < 5
