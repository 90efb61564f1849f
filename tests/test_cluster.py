"""Pack and unpack on a Dask cluster: a local two-worker cluster on 127.0.0.1 writes the same bytes as aec alone."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import aec
from aec import cluster_unpack
from aec.cli.main import app
from aec.container import open_container

distributed = pytest.importorskip("distributed")  # the [cluster] extra; make test installs it
runner = CliRunner()


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("effort", [0, 1])
def test_cluster_pack_is_byte_identical(tmp_path, scheduler, example_digits, example_images, effort):
    np.savez(tmp_path / "arr.npz", images=np.concatenate([example_images] * 3), labels=np.arange(144) % 10)
    inputs = [example_digits, tmp_path / "arr.npz"]
    alone = aec.pack(inputs, tmp_path / "alone.aec", effort=effort, chunk_size=100)
    spread = aec.pack(inputs, tmp_path / "cluster.aec", effort=effort, chunk_size=100, cluster=scheduler)
    assert (tmp_path / "cluster.aec").read_bytes() == (tmp_path / "alone.aec").read_bytes()
    assert spread.images == alone.images == 192 and spread.input_bytes == alone.input_bytes


def test_cluster_pack_reports_bad_inputs_like_pack(tmp_path, scheduler, example_digits):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted(example_digits.glob("*.png"))[:5]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "junk.png").write_bytes(b"not an image")
    with pytest.raises(aec.InputError, match="junk.png: not an image"):
        aec.pack([folder], tmp_path / "x.aec", cluster=scheduler)
    assert not (tmp_path / "x.aec").exists()
    result = aec.pack([folder], tmp_path / "y.aec", cluster=scheduler, skip_invalid=True)
    assert result.images == 5 and [p.name for p, _ in result.skipped] == ["junk.png"]


@pytest.mark.slow  # waits for the connection timeout
def test_unreachable_scheduler_is_one_line(tmp_path, example_digits):
    with pytest.raises(aec.AecError, match="cannot reach the Dask scheduler"):
        aec.pack([example_digits], tmp_path / "x.aec", cluster="tcp://127.0.0.1:9")


# Unpack on the cluster: the workers decode the chunks, the same outputs come back.


@pytest.fixture(scope="module")
def packed(tmp_path_factory, example_digits, example_images):
    """The 48 example digits (files) and 144 more from an .npz with labels, in chunks of 10."""
    folder = tmp_path_factory.mktemp("packed")
    np.savez(folder / "arr.npz", images=np.concatenate([example_images] * 3), labels=np.arange(144) % 10)
    aec.pack([folder / "arr.npz", example_digits], folder / "x.aec", chunk_size=10)
    return folder / "x.aec"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative name, with its bytes (a file: its bytes under '')."""
    if root.is_file():
        return {"": root.read_bytes()}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(tmp_path: Path, name: str, fmt: str) -> list[Path]:
    """What unpack -o tmp_path/name --format fmt writes."""
    if fmt == "png":
        return [tmp_path / name]
    return sorted(tmp_path.glob(f"{name}*.{fmt}"))


@pytest.mark.parametrize("fmt", ["png", "npy", "npz"])
@pytest.mark.parametrize("members", [None, ["arr/0[3-5]?.png", "00047_*", "arr/143.png"]])
def test_cluster_unpack_is_byte_identical(tmp_path, scheduler, packed, fmt, members):
    alone = aec.unpack(packed, tmp_path / "alone", format=fmt, members=members)
    spread = aec.unpack(packed, tmp_path / "spread", format=fmt, members=members, cluster=scheduler)
    assert spread.images == alone.images == (192 if members is None else 32)
    assert np.array_equal(spread.flags, alone.flags) and np.array_equal(spread.labels, alone.labels)
    mine, theirs = outputs(tmp_path, "alone", fmt), outputs(tmp_path, "spread", fmt)
    assert len(mine) == len(theirs) == (1 if fmt != "npy" else 2)  # npy: the labels beside
    for a, b in zip(mine, theirs):
        assert tree(a) == tree(b) and len(tree(a)) == (spread.images if fmt == "png" else 1)


def test_cluster_unpack_of_chunks_in_blocks(tmp_path, scheduler, example_images):
    np.save(tmp_path / "in.npy", np.concatenate([example_images] * 25))  # 1,200 images: coder 2 (blocks)
    aec.pack([tmp_path / "in.npy"], tmp_path / "x.aec", chunk_size=1100)
    aec.unpack(tmp_path / "x.aec", tmp_path / "alone.npz", format="npz", members=["10??.png", "0005.png"])
    aec.unpack(
        tmp_path / "x.aec", tmp_path / "spread.npz", format="npz", members=["10??.png", "0005.png"], cluster=scheduler
    )
    assert (tmp_path / "spread.npz").read_bytes() == (tmp_path / "alone.npz").read_bytes()
    assert len(np.load(tmp_path / "spread.npz")["images"]) == 101
    aec.unpack(tmp_path / "x.aec", tmp_path / "alone", workers=2)  # PNG files written by worker processes here
    aec.unpack(tmp_path / "x.aec", tmp_path / "spread", workers=2, cluster=scheduler)
    assert tree(tmp_path / "spread") == tree(tmp_path / "alone") and len(tree(tmp_path / "alone")) == 1200


def test_chunks_too_big_to_hold_are_decoded_here_in_turn(tmp_path, scheduler, packed, monkeypatch):
    monkeypatch.setattr(cluster_unpack, "PIXELS_HELD", 5 * 28 * 28)  # chunks of 10 here; the last (2) on a worker
    aec.unpack(packed, tmp_path / "alone.npz", format="npz")
    aec.unpack(packed, tmp_path / "spread.npz", format="npz", cluster=scheduler)
    assert (tmp_path / "spread.npz").read_bytes() == (tmp_path / "alone.npz").read_bytes()


def test_cluster_unpack_of_residual_images_is_exact(tmp_path, scheduler, example_images):
    np.save(tmp_path / "in.npy", example_images)
    aec.pack([tmp_path / "in.npy"], tmp_path / "x.aec", max_error=0, chunk_size=7)  # every image has a residual
    assert aec.info(tmp_path / "x.aec")["images_with_residual"] == 48
    aec.unpack(tmp_path / "x.aec", tmp_path / "alone.npy", format="npy")
    aec.unpack(tmp_path / "x.aec", tmp_path / "spread.npy", format="npy", cluster=scheduler)
    assert (tmp_path / "spread.npy").read_bytes() == (tmp_path / "alone.npy").read_bytes()
    assert np.array_equal(np.load(tmp_path / "spread.npy"), example_images)  # lossless, through the workers
    aec.unpack(tmp_path / "x.aec", tmp_path / "alone", members=["1?.png"])
    aec.unpack(tmp_path / "x.aec", tmp_path / "spread", members=["1?.png"], cluster=scheduler)
    assert tree(tmp_path / "spread") == tree(tmp_path / "alone") and len(tree(tmp_path / "alone")) == 10


def with_wrong_pixel_crc(data: bytes, chunk: int) -> bytes:
    """`data` with the pixel checksum of `chunk` (from 0) wrong, every CRC-32 of the container right."""
    header = open_container(data).header
    crcs = list(header.pixel_crcs)
    crcs[chunk] ^= 1
    head = dataclasses.replace(header, pixel_crcs=tuple(crcs)).pack()
    return head + data[len(head) :]


@pytest.mark.parametrize("damage", ["latents", "pixels"])
@pytest.mark.parametrize("fmt", ["png", "npy"])
def test_cluster_unpack_reports_a_damaged_chunk_as_unpack_does(tmp_path, scheduler, packed, damage, fmt):
    data = bytearray(packed.read_bytes())
    if damage == "latents":
        data[-3] ^= 0xFF  # the last chunk's latents: its CRC-32 no longer holds (read by this process)
    else:
        data = with_wrong_pixel_crc(bytes(data), 12)  # chunk 13's pixels differ (found by a worker)
    (tmp_path / "bad.aec").write_bytes(bytes(data))
    with pytest.raises(aec.ContainerError) as alone:
        aec.unpack(tmp_path / "bad.aec", tmp_path / "alone", format=fmt)
    with pytest.raises(aec.ContainerError) as spread:
        aec.unpack(tmp_path / "bad.aec", tmp_path / "spread", format=fmt, cluster=scheduler)
    assert str(spread.value) == str(alone.value)
    assert ("chunk 20 of 20" if damage == "latents" else "chunk 13: the decoded pixels differ") in str(alone.value)
    result = cli("unpack", tmp_path / "bad.aec", "-o", tmp_path / "cli", "--format", fmt, "--cluster", scheduler)
    assert result.exit_code == 1 and result.stderr.strip() == f"aec: {alone.value}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.aec"]  # nothing left behind
    result = cli("unpack", "--test", tmp_path / "bad.aec", "--cluster", scheduler)
    assert result.exit_code == 1 and result.stderr.strip() == f"aec: {alone.value}"


def test_cluster_unpack_on_the_command_line(tmp_path, scheduler, packed):
    result = cli("unpack", packed, "-o", tmp_path / "out", "--cluster", scheduler, "arr/1*")
    assert result.exit_code == 0 and result.stderr.strip() == f"unpacked 44 images with labels into {tmp_path / 'out'}/"
    result = cli("unpack", "--test", packed, "--cluster", scheduler)
    assert result.exit_code == 0 and "OK, 192 images" in result.stderr


def test_cluster_needs_distributed_and_says_how_to_install_it(tmp_path, packed, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the [cluster] extra were not installed
    result = cli("unpack", packed, "-o", tmp_path / "out", "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 1
    assert result.stderr.strip() == "aec: --cluster needs Dask's distributed: pip install 'aec-codec[cluster]'"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # waits for the connection timeout
def test_unpack_from_an_unreachable_scheduler_is_one_line(tmp_path, packed):
    result = cli("unpack", packed, "-o", tmp_path / "out", "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "\n" not in result.stderr.strip()
    assert "tcp://127.0.0.1:9: cannot reach the Dask scheduler" in result.stderr
    assert not (tmp_path / "out").exists()
