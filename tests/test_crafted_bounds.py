"""Crafted .aec files, written as an attacker would (every CRC right), read under a memory limit: each
command finishes with its answer or a one-line error, never a MemoryError, a crash or a blow-up."""

import lzma
import resource
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import aec
from aec.container import MAX_CHUNK_IMAGES
from aec.record import FLAG_RESIZED, MAX_CANVAS_PIXELS, encode_image_info
from aec.testing.hostile import (
    crafted_file,
    likeliest_latents,
    names_offset,
    numbered_names,
    raw_names,
    with_header,
)

AEC = [sys.executable, "-m", "aec"]


def run_limited(args: list, limit_mb: int, timeout: float = 300) -> tuple[int, str, float]:
    """`aec ARGS` with its address space capped at `limit_mb`: (exit code, stderr, seconds)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    began = time.perf_counter()
    done = subprocess.run(AEC + [str(a) for a in args], preexec_fn=cap, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr, time.perf_counter() - began


def assert_answer_or_one_line(code: int, stderr: str) -> None:
    assert code in (0, 1), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert len(stderr.strip().splitlines()) <= 1, stderr


def one_chunk(tmp_path, count: int, **options) -> object:
    model = aec.resolve_model(quality=1)  # the cheapest images: about 3 bytes each
    path = tmp_path / "crafted.aec"
    path.write_bytes(crafted_file(model, likeliest_latents(model, count), numbered_names(count), **options))
    return path


def test_a_chunk_of_128k_images_is_decoded_a_slice_at_a_time(tmp_path):
    """400 kB claiming 131,072 images in one chunk: decoding the chunk whole took over 1 GB."""
    path = one_chunk(tmp_path, 1 << 17)
    assert path.stat().st_size < 500_000
    code, stderr, _ = run_limited(["unpack", "--test", path], 500)
    assert_answer_or_one_line(code, stderr)
    assert code == 0
    code, stderr, _ = run_limited(["unpack", path, "--format", "npy", "-o", tmp_path / "out.npy"], 500)
    assert code == 0, stderr
    assert np.load(tmp_path / "out.npy", mmap_mode="r").shape == (1 << 17, 28, 28)


@pytest.mark.slow  # decodes a million images: a minute or two
@pytest.mark.parametrize("command", [["unpack", "--test"], ["unpack", "--format", "npz", "-o", "out.npz"]])
def test_a_chunk_of_a_million_images_in_3_mb(tmp_path, command):
    """One chunk of 2^20 images in a 3.2 MB file took 5.7 GB in unpack --test (latents in int64, the
    decoder's activations and the pixels of the whole chunk at once)."""
    path = one_chunk(tmp_path, MAX_CHUNK_IMAGES)
    assert path.stat().st_size < 3_400_000  # about 3.2 bits an image with level 1's likeliest latents
    args = command[:1] + [path] + [str(tmp_path / a) if a.endswith(".npz") else a for a in command[1:]]
    code, stderr, _ = run_limited(args, 600, timeout=600)
    assert_answer_or_one_line(code, stderr)
    assert code == 0


def test_long_names_cannot_make_the_npz_names_array_huge(tmp_path):
    """numpy stores every name as wide as the longest, 4 bytes a character: 20,000 names of 4,000 characters
    asked for 320 MB (a million of them, in 3 MB, for 15.6 GiB)."""
    model = aec.resolve_model(quality=1)
    count = 20_000
    path = tmp_path / "names.aec"
    path.write_bytes(crafted_file(model, likeliest_latents(model, count), numbered_names(count, 4000)))
    code, stderr, seconds = run_limited(["unpack", path, "--format", "npz", "-o", tmp_path / "out.npz"], 400, 120)
    assert_answer_or_one_line(code, stderr)
    assert code == 1 and "--format npy" in stderr and seconds < 60
    assert not (tmp_path / "out.npz").exists()
    # The same images with short names still go to an .npz, names and all.
    path.write_bytes(crafted_file(model, likeliest_latents(model, count), numbered_names(count)))
    code, stderr, _ = run_limited(["unpack", path, "--format", "npz", "-o", tmp_path / "out.npz"], 400, 120)
    assert code == 0, stderr
    with np.load(tmp_path / "out.npz") as npz:
        assert npz["names"].tolist()[:2] == ["00000", "00001"] and npz["images"].shape == (count, 28, 28)


def resized(tmp_path, width: int, height: int, count: int = 1):
    """A file of `count` resized images whose record says the original was width x height."""
    model = aec.resolve_model(quality=1)
    flags = np.full(count, FLAG_RESIZED, np.uint8)
    geometry = np.tile(np.array([width, height, 0, 0, width, height, 4, 4, 20, 20], np.uint16), (count, 1))
    path = tmp_path / "resized.aec"
    record = encode_image_info(flags, geometry)
    path.write_bytes(crafted_file(model, likeliest_latents(model, count), numbered_names(count), records=[record]))
    return path


def test_restore_size_refuses_a_canvas_larger_than_pack_accepts(tmp_path):
    """A record saying 65535x65535 asked --restore-size for a 4.3 GB canvas per image (13 kB: hours)."""
    path = resized(tmp_path, 65535, 65535)
    code, stderr, seconds = run_limited(["unpack", path, "-o", tmp_path / "out", "--restore-size"], 600, 60)
    assert_answer_or_one_line(code, stderr)
    assert code == 1 and "impossible geometry" in stderr and seconds < 30
    assert not (tmp_path / "out").exists()
    with pytest.raises(aec.ContainerError, match="impossible geometry"):
        aec.verify(path.read_bytes())


def test_restore_size_still_gives_the_largest_canvas_back(tmp_path):
    side = int(MAX_CANVAS_PIXELS**0.5)
    path = resized(tmp_path, side, side)
    code, stderr, _ = run_limited(["unpack", path, "-o", tmp_path / "out", "--restore-size"], 800, 60)
    assert code == 0, stderr
    with Image.open(tmp_path / "out" / "0.png") as image:
        assert image.size == (side, side)


@pytest.fixture(scope="module")
def billions(tmp_path_factory):
    """A file whose header claims 30 million images, each chunk head consistent (2^20 images, no bytes), and
    a names table of as many names that LZMA holds in a few kilobytes."""
    model = aec.resolve_model(quality=1)
    legacy = crafted_file(model, likeliest_latents(model, 1), numbered_names(1), pixel_crcs=False)  # 1.0
    count = 30_000_000
    raw = raw_names(["a"]) * count
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    chunks = -(-count // MAX_CHUNK_IMAGES)
    heads = b""
    for index in range(chunks):
        images = min(MAX_CHUNK_IMAGES, count - index * MAX_CHUNK_IMAGES)
        head = np.array([images, 0, 0], "<u4").tobytes()
        heads += head + zlib.crc32(head).to_bytes(4, "little")
    start = names_offset(legacy)
    rebuilt = legacy[:start] + blob + heads
    crafted = with_header(
        rebuilt, image_count=count, chunk_size=MAX_CHUNK_IMAGES, chunk_count=chunks,
        names_stored_length=len(blob), names_raw_length=len(raw), names_crc=zlib.crc32(blob),
    )  # fmt: skip
    path = tmp_path_factory.mktemp("billions") / "billions.aec"
    path.write_bytes(crafted)
    return path


COMMANDS = {
    "info": ["info", "{in}"],
    "list": ["list", "{in}"],
    "unpack --test": ["unpack", "--test", "{in}"],
    "unpack": ["unpack", "{in}", "-o", "{tmp}/out"],
    "unpack NAME": ["unpack", "{in}", "a", "-o", "{tmp}/out"],
    "unpack --format npz": ["unpack", "{in}", "--format", "npz", "-o", "{tmp}/out.npz"],
    "cat": ["cat", "{in}", "{in}", "-o", "{tmp}/joined.aec"],
    "show": ["show", "{in}", "-o", "{tmp}/sheet.png"],
}


# list and cat read the names before any chunk: they need the capacity check that open_for_decoding and info make.


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_count_the_bytes_cannot_hold(tmp_path, billions, command):
    args = [a.format(**{"in": billions, "tmp": tmp_path}) for a in COMMANDS[command]]
    code, stderr, seconds = run_limited(args, 600, 120)
    assert_answer_or_one_line(code, stderr)
    assert code == 1 and "cannot fit" in stderr and seconds < 10, (stderr, seconds)


def test_the_api_refuses_a_count_the_bytes_cannot_hold(billions):
    for call in (aec.open, aec.verify, aec.decode, aec.info):
        began = time.perf_counter()
        with pytest.raises(aec.ContainerError, match="cannot fit"):
            call(billions)
        assert time.perf_counter() - began < 5
