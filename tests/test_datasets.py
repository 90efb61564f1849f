"""Finding, verifying and loading MNIST."""

import gzip

import numpy as np
import pytest

from codec import datasets
from codec.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip_and_errors():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(datasets.parse_idx(_idx(a)), a)
    with pytest.raises(DataError, match="bad magic"):
        datasets.parse_idx(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="data bytes"):
        datasets.parse_idx(_idx(a)[:-1])
    with pytest.raises(DataError, match="truncated"):
        datasets.parse_idx(bytes([0, 0, 8, 3, 0, 0]))


@pytest.mark.slow
def test_load_mnist_from_aec_data(mnist_dir, monkeypatch):
    monkeypatch.setenv("AEC_DATA", str(mnist_dir))
    x, y = datasets.load_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y[:3].tolist() == [7, 2, 1]


def test_wrong_bytes_are_rejected_by_sha256(tmp_path):
    fake = np.zeros((10, 28, 28), np.uint8)
    for split in datasets.SPLIT_FILES.values():
        for stem in split:
            data = _idx(fake) if "images" in stem else _idx(np.zeros(10, np.uint8))
            (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match="SHA-256"):
        datasets.load_mnist("test", tmp_path)


def test_search_order_and_helpful_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AEC_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    places = datasets.candidate_locations(tmp_path / "explicit")
    assert places == [tmp_path / "explicit", tmp_path / "env", tmp_path / "cache" / "aec" / "mnist",
                      tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"]
    with pytest.raises(DataError, match="AEC_DATA"):
        datasets.load_mnist("train")
    with pytest.raises(DataError, match="explicit"):
        datasets.load_mnist("train", tmp_path / "explicit")


def test_keras_npz_is_accepted(tmp_path, monkeypatch):
    monkeypatch.delenv("AEC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    npz = tmp_path / ".keras" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    x = np.random.default_rng(0).integers(0, 255, (10000, 28, 28), dtype=np.uint8)
    np.savez(npz, x_train=np.zeros((60000, 28, 28), np.uint8), y_train=np.zeros(60000, np.uint8),
             x_test=x, y_test=np.ones(10000, np.uint8))
    got, labels = datasets.load_mnist("test")
    assert np.array_equal(got, x) and labels[0] == 1
