"""Finding, verifying and loading MNIST."""

import gzip

import numpy as np
import pytest

from aec import datasets, idx
from aec.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip_and_errors():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(idx.parse_idx(_idx(a)), a)
    with pytest.raises(DataError, match="bad magic"):
        idx.parse_idx(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="data bytes"):
        idx.parse_idx(_idx(a)[:-1])
    with pytest.raises(DataError, match="truncated"):
        idx.parse_idx(bytes([0, 0, 8, 3, 0, 0]))


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
    assert places == [
        tmp_path / "explicit",
        tmp_path / "env",
        tmp_path / "cache" / "aec" / "mnist",
        tmp_path / "home" / ".keras" / "datasets" / "mnist.npz",
    ]
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
    np.savez(
        npz,
        x_train=np.zeros((60000, 28, 28), np.uint8),
        y_train=np.zeros(60000, np.uint8),
        x_test=x,
        y_test=np.ones(10000, np.uint8),
    )
    got, labels = datasets.load_mnist("test")
    assert np.array_equal(got, x) and labels[0] == 1


# --- aec train --data: the user's own arrays and files --------------------------


def _digits(n=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_training_images_from_npy_npz_and_idx(tmp_path):
    """.npy ([N,28,28] or [N,784]), .npz (one array, or one named images) and IDX (raw or gzip) all load."""
    x = _digits()
    np.save(tmp_path / "flat.npy", x.reshape(len(x), -1))
    np.savez(tmp_path / "one.npz", whatever=x)
    np.savez(tmp_path / "named.npz", images=x, labels=np.arange(len(x)))
    (tmp_path / "digits.idx").write_bytes(_idx(x))
    (tmp_path / "digits.idx.gz").write_bytes(gzip.compress(_idx(x)))
    for name, kind in [
        ("flat.npy", "npy"),
        ("one.npz", "npz"),
        ("named.npz", "npz"),
        ("digits.idx", "idx"),
        ("digits.idx.gz", "idx"),
    ]:
        data = datasets.load_training_images(tmp_path / name)
        assert np.array_equal(data.images, x) and data.kind == kind and data.source == str(tmp_path / name)
    assert (
        datasets.load_training_images(tmp_path / "flat.npy").sha256
        == datasets.load_training_images(tmp_path / "digits.idx").sha256
    )


def test_training_images_are_validated(tmp_path):
    """Wrong dtype, shape, too few images, ambiguous archives and missing paths are one-line InputErrors."""
    from aec.errors import InputError

    np.save(tmp_path / "float.npy", _digits().astype(np.float32) / 255)
    np.save(tmp_path / "shape.npy", np.zeros((5, 32, 32), np.uint8))
    np.save(tmp_path / "one.npy", np.zeros((1, 28, 28), np.uint8))
    np.savez(tmp_path / "two.npz", a=_digits(), b=_digits())
    (tmp_path / "labels.idx").write_bytes(_idx(np.zeros(10, np.uint8)))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    cases = {
        "float.npy": "uint8",
        "shape.npy": "[N, 28, 28]",
        "one.npy": "at least 2",
        "two.npz": "a, b",
        "labels.idx": "[10]",
        "junk.npy": "cannot read array",
        "missing": "no such file",
    }
    for name, words in cases.items():
        with pytest.raises(InputError) as err:
            datasets.load_training_images(tmp_path / name)
        assert words in str(err.value) and str(tmp_path / name) in str(err.value) and "\n" not in str(err.value)


def test_image_folder_is_prepared_as_pack_does(tmp_path):
    """A folder of images: hidden files skipped, light-background digits inverted (pack's --invert auto)."""
    from PIL import Image

    x = _digits(4)
    x[:, 0, :] = x[:, -1, :] = x[:, :, 0] = x[:, :, -1] = 0  # dark border: not inverted
    for i, image in enumerate(x):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    Image.fromarray(255 - x[0]).save(tmp_path / "z-inverted.png")
    (tmp_path / ".hidden").write_bytes(b"skipped")
    data = datasets.load_training_images(tmp_path)
    assert data.kind == "images" and len(data.images) == 5
    assert np.array_equal(data.images[:4], x) and np.array_equal(data.images[4], x[0])
    never = datasets.load_training_images(tmp_path, invert="never")
    assert np.array_equal(never.images[4], 255 - x[0])


@pytest.mark.slow
def test_training_images_default_to_verified_mnist(mnist_dir, monkeypatch):
    monkeypatch.setenv("AEC_DATA", str(mnist_dir))
    data = datasets.load_training_images()
    assert data.images.shape == (60000, 28, 28) and data.kind == "mnist" and data.source == str(mnist_dir)
    # An MNIST folder given as --data is the training split, verified.
    assert datasets.load_training_images(mnist_dir).sha256 == data.sha256
