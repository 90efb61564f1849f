"""Hostile inputs to pack: each is refused (or skipped with --skip-invalid) quickly and in bounded memory.

Every case runs `aec pack` as a real process under a wrapper that reports its peak RSS, with a timeout:
an input that hangs pack or makes it grow is a failure here, not a stuck test run.
"""

import gzip
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aec.idx import idx_bytes

TIMEOUT = 60  # seconds; a pack of these inputs takes about one
PEAK_MB = 300  # an interpreter with NumPy, Pillow and the model is about 70 MB
ZEROS = 1 << 20

# Runs the command given, with a timeout, and prints what it did as JSON: its peak RSS is the largest of
# the children this wrapper waited for, and the command is the only one.
WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.monotonic()
try:
    done = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]),
                          stdin=subprocess.DEVNULL)
    rc, err = done.returncode, done.stderr
except subprocess.TimeoutExpired as timeout:
    rc, err = "timeout", (timeout.stderr or b"").decode(errors="replace")
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
peak_mb = peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
print(json.dumps({"rc": rc, "stderr": err, "seconds": time.monotonic() - start, "peak_mb": peak_mb}))
"""

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")


def pack(*args) -> dict:
    """rc, stderr, seconds and peak_mb of `aec pack ARGS` run as its own process."""
    command = [sys.executable, "-c", WRAPPER, str(TIMEOUT), sys.executable, "-m", "aec", "pack", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT + 30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(result: dict, name: str, *words: str) -> None:
    """The pack failed at once, in one line naming `name` (and `words`), within the memory bound."""
    assert result["rc"] == 1, result
    line = result["stderr"].strip()
    assert "\n" not in line and name in line and all(w in line for w in words), line
    assert result["peak_mb"] < PEAK_MB, result


def skipped(result: dict, name: str, *words: str) -> None:
    """--skip-invalid packed the rest and named `name` among the skipped."""
    assert result["rc"] == 0, result
    lines = result["stderr"].strip().splitlines()
    assert any(ln.startswith("aec: skipped") and name in ln and all(w in ln for w in words) for ln in lines), lines
    assert result["peak_mb"] < PEAK_MB, result


@pytest.fixture
def folder(tmp_path, example_digits) -> Path:
    """An input folder holding one good digit; each test adds its hostile file."""
    root = tmp_path / "in"
    root.mkdir()
    (root / "ok.png").write_bytes((example_digits / "00000_7.png").read_bytes())
    return root


def packed_count(archive: Path) -> int:
    import aec

    return aec.info(archive)["images"]


# --- not regular files --------------------------------------------------------------------------------


@needs_fifo
@pytest.mark.parametrize("name", ["x.npy", "x.npz", "x.png", "t10k-images-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_a_fifo_in_a_folder_is_refused_without_waiting_for_a_writer(folder, tmp_path, name):
    os.mkfifo(folder / name)
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), name, "not a regular file")
    assert not out.exists()
    skipped(pack(folder, "-o", out, "--skip-invalid"), name, "not a regular file")
    assert packed_count(out) == 1


@needs_dev_zero
@pytest.mark.parametrize("name", ["z.npy", "z.npz", "z.png", "z-images-idx3-ubyte", "z-idx3-ubyte.gz"])
def test_a_link_to_dev_zero_is_refused(folder, tmp_path, name):
    os.symlink("/dev/zero", folder / name)
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), name, "not a regular file")
    skipped(pack(folder, "-o", out, "--skip-invalid"), name, "not a regular file")
    assert packed_count(out) == 1


# --- images whose header promises too many pixels ------------------------------------------------------


def test_a_huge_png_is_refused_from_its_header(folder, tmp_path):
    # 315 KB on disk, 324 MB as RGBA pixels; once 2.6 GB while being converted to grey.
    Image.new("RGBA", (9000, 9000), (0, 0, 0, 0)).save(folder / "huge.png", compress_level=9)
    assert (folder / "huge.png").stat().st_size < 1 << 20
    out = tmp_path / "o.aec"
    result = pack(folder, "-o", out, "--resize")
    refused(result, "huge.png", "9000x9000", "pixels")
    assert result["seconds"] < 20
    skipped(pack(folder, "-o", out, "--resize", "--skip-invalid"), "huge.png", "9000x9000")
    assert packed_count(out) == 1


def test_an_rgba_image_at_the_pixel_limit_packs_in_bounded_memory(tmp_path):
    from aec.images import MAX_PIXELS

    side = int(MAX_PIXELS**0.5)
    digit = np.zeros((side, side), np.uint8)
    digit[side // 4 : 3 * side // 4, side // 2 - side // 16 : side // 2 + side // 16] = 255  # a "1"
    rgba = np.stack([digit, digit, digit, np.where(digit > 0, 255, 0).astype(np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "one.png")
    del digit, rgba
    result = pack(tmp_path / "one.png", "-o", tmp_path / "o.aec", "--resize")
    assert result["rc"] == 0, result
    assert result["peak_mb"] < 2 * PEAK_MB, result  # the decoded RGBA alone is 67 MB


# --- .npz members ----------------------------------------------------------------------------------------


def npy_header(shape: tuple) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_npz(path: Path, shape: tuple, data_bytes: int, member: str = "images.npy") -> None:
    """An .npz whose one member has an .npy header of `shape` and `data_bytes` zero bytes of data after it,
    written in pieces (a member of a gigabyte costs a megabyte on disk and in this process)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open(member, "w", force_zip64=True) as f:
            f.write(npy_header(shape))
            for start in range(0, data_bytes, ZEROS):
                f.write(bytes(min(ZEROS, data_bytes - start)))


def test_an_npz_member_with_more_data_than_its_header_says_is_refused(folder, tmp_path):
    write_npz(folder / "more.npz", (10, 28, 28), 600 * ZEROS)  # ten images, then 600 MB of zeros
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "more.npz", "images.npy")
    skipped(pack(folder, "-o", out, "--skip-invalid"), "more.npz")
    assert packed_count(out) == 1


def test_an_npz_member_with_less_data_than_its_header_says_is_refused_in_bounded_memory(folder, tmp_path):
    write_npz(folder / "less.npz", (800_000, 28, 28), 799_999 * 784)  # 627 MB promised, one image short
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "less.npz", "images.npy")
    skipped(pack(folder, "-o", out, "--skip-invalid"), "less.npz")


def declare_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size the zip declares for `member` (local and central headers, no ZIP64)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_at : at + name_at + len(name)] == name:
                struct.pack_into("<I", data, at + size_at, size)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def test_an_npz_member_declaring_a_huge_size_is_refused(folder, tmp_path):
    path = folder / "huge.npz"
    np.savez_compressed(path, images=np.zeros((10, 28, 28), np.uint8))
    declare_size(path, "images.npy", 0xFFFF_FFF0)  # 4 GB declared, 8 KB there
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "huge.npz", "images.npy")
    skipped(pack(folder, "-o", out, "--skip-invalid"), "huge.npz")


def test_an_npz_member_whose_data_stops_short_of_its_declared_size_is_refused(folder, tmp_path):
    path = folder / "short.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", npy_header((1000, 28, 28)) + bytes(10 * 784))
    declare_size(path, "images.npy", len(npy_header((1000, 28, 28))) + 1000 * 784)  # sizes agree; data does not
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "short.npz", "images.npy")


# --- gzip IDX -----------------------------------------------------------------------------------------------


def gzip_stream(path: Path, head: bytes, zero_bytes: int, tail: bytes = b"") -> None:
    """A .gz of `head` then `zero_bytes` zeros, written in pieces, then `tail` appended raw."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as f:
            f.write(head)
            for start in range(0, zero_bytes, ZEROS):
                f.write(bytes(min(ZEROS, zero_bytes - start)))
        raw.write(tail)


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_a_gzip_idx_with_more_data_than_its_header_says_is_refused_in_bounded_memory(folder, tmp_path):
    gzip_stream(folder / "more-idx3-ubyte.gz", idx_header(10, 28, 28), 600 * ZEROS)
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "more-idx3-ubyte.gz", "more data")
    skipped(pack(folder, "-o", out, "--skip-invalid"), "more-idx3-ubyte.gz")
    assert packed_count(out) == 1


def test_a_gzip_idx_declaring_two_billion_images_in_a_tiny_file_is_refused(folder, tmp_path):
    gzip_stream(folder / "many-idx3-ubyte.gz", idx_header(2**31, 28, 28), 10 * 784)
    result = pack(folder, "-o", tmp_path / "o.aec")
    refused(result, "many-idx3-ubyte.gz", "ends early")
    assert result["seconds"] < 20


def test_a_gzip_idx_with_trailing_garbage_is_refused(folder, tmp_path):
    gzip_stream(folder / "tail-idx3-ubyte.gz", idx_bytes(np.zeros((10, 28, 28), np.uint8)), 0, b"trailing garbage")
    refused(pack(folder, "-o", tmp_path / "o.aec"), "tail-idx3-ubyte.gz")


def test_gzip_idx_labels_that_do_not_match_the_images_are_refused(folder, tmp_path):
    images = np.zeros((10, 28, 28), np.uint8)
    (folder / "t-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    gzip_stream(folder / "t-labels-idx1-ubyte.gz", idx_header(2**31), 0)  # promises 2 GB of labels, holds none
    result = pack(folder / "t-images-idx3-ubyte.gz", "-o", tmp_path / "o.aec")
    refused(result, "t-labels-idx1-ubyte.gz", "labels")


# --- .npy -----------------------------------------------------------------------------------------------------


def test_a_truncated_npy_is_skipped_like_any_invalid_input(folder, tmp_path, example_images):
    data = npy_header((len(example_images), 28, 28)) + example_images.tobytes()
    (folder / "cut.npy").write_bytes(data[:-100])
    out = tmp_path / "o.aec"
    refused(pack(folder, "-o", out), "cut.npy", "truncated")
    skipped(pack(folder, "-o", out, "--skip-invalid"), "cut.npy", "truncated")
    assert packed_count(out) == 1


def test_an_npy_longer_than_its_header_says_is_refused(folder, tmp_path, example_images):
    data = npy_header((len(example_images), 28, 28)) + example_images.tobytes()
    (folder / "long.npy").write_bytes(data + bytes(784))
    refused(pack(folder, "-o", tmp_path / "o.aec"), "long.npy")


def test_a_well_formed_npz_and_gzip_idx_still_pack_with_labels(tmp_path, example_images):
    labels = (np.arange(len(example_images)) % 10).astype(np.uint8)
    np.savez_compressed(tmp_path / "d.npz", images=example_images, labels=labels)
    (tmp_path / "t-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(example_images)))
    (tmp_path / "t-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    # A stored (uncompressed) member and a member holding [N, 784] are read the same way.
    with zipfile.ZipFile(tmp_path / "s.npz", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("x.npy", npy_header((len(example_images), 784)) + example_images.tobytes())
    import aec

    for name in ("d.npz", "t-images-idx3-ubyte.gz", "s.npz"):
        out = tmp_path / f"{name}.aec"
        aec.pack([tmp_path / name], out)
        assert aec.info(out)["images"] == len(example_images)
        assert aec.info(out)["labels"] is (name != "s.npz")


@pytest.mark.parametrize("patch", ["encrypted", "unknown compression"])
def test_an_npz_member_zipfile_cannot_open_is_an_invalid_input(tmp_path, patch):
    import aec

    path = tmp_path / "odd.npz"
    np.savez_compressed(path, images=np.zeros((3, 28, 28), np.uint8))
    data = bytearray(path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + flags_at
        if patch == "encrypted":
            data[at] |= 1
        else:
            struct.pack_into("<H", data, at + 2, 99)  # the method field follows the flags
    path.write_bytes(bytes(data))
    with pytest.raises(aec.InputError, match="odd.npz"):
        aec.pack([path], tmp_path / "o.aec")


def test_an_npz_with_a_huge_zip_directory_is_refused_before_it_is_read(folder, tmp_path):
    with zipfile.ZipFile(folder / "many.npz", "w") as z:
        z.writestr("images.npy", npy_header((1, 28, 28)) + bytes(784))
        for i in range(40_000):  # a directory entry costs zipfile a few hundred bytes of memory
            z.writestr(f"{i}", b"")
    refused(pack(folder, "-o", tmp_path / "o.aec"), "many.npz", "zip directory")


def test_a_tiff_with_damaged_tags_is_one_error_line(tmp_path):
    """Found by the input-reader fuzzer: Pillow raises TypeError inside load() and warns on stderr."""
    damaged = Path(__file__).resolve().parent / "fixtures" / "hostile" / "damaged-tags.tif"
    done = subprocess.run(
        [sys.executable, "-m", "aec", "pack", str(damaged), "-o", str(tmp_path / "x.aec")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "damaged-tags.tif: cannot read image" in done.stderr
