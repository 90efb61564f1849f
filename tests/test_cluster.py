"""Pack on a Dask cluster: a local two-worker cluster on 127.0.0.1 writes the same bytes as pack alone."""

from __future__ import annotations

import numpy as np
import pytest

import aec

distributed = pytest.importorskip("distributed")  # the [cluster] extra; make test installs it


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
