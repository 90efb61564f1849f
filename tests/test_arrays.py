"""Array files in and out: IDX (raw and gzip), .npy, .npz, with labels."""

import gzip

import numpy as np
import pytest
from typer.testing import CliRunner

import aec
from aec.cli.main import app
from aec.idx import idx_bytes


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def arrays(example_images):
    labels = np.arange(len(example_images)) % 10
    return example_images, labels.astype(np.uint8)


def decoded_reference(images):
    return aec.decode(aec.encode(images))


def test_idx_gz_with_sibling_labels(tmp_path, arrays):
    images, labels = arrays
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    out = tmp_path / "a.aec"
    assert cli("pack", tmp_path / "t10k-images-idx3-ubyte.gz", "-o", out, "-q").exit_code == 0
    facts = aec.info(out)
    assert facts["images"] == 48 and facts["labels"] is True and facts["first_names"][0] == "00.png"
    result = cli("unpack", out, "--format", "npz", "-o", tmp_path / "back.npz")
    assert result.exit_code == 0 and "with labels" in result.stderr
    with np.load(tmp_path / "back.npz") as z:
        assert np.array_equal(z["images"], decoded_reference(images))
        assert np.array_equal(z["labels"], labels)
        assert z["names"][0] == "00.png"


def test_raw_idx_without_labels_and_npy_output(tmp_path, arrays):
    images, _ = arrays
    (tmp_path / "digits.idx3").write_bytes(idx_bytes(images))
    out = tmp_path / "a.aec"
    assert cli("pack", tmp_path / "digits.idx3", "-o", out, "-q").exit_code == 0
    assert aec.info(out)["labels"] is False
    assert cli("unpack", out, "--format", "npy", "-o", tmp_path / "back.npy", "-q").exit_code == 0
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == np.uint8 and np.array_equal(back, decoded_reference(images))
    assert not (tmp_path / "back-labels.npy").exists()


@pytest.mark.parametrize("flat", [False, True])
def test_npy_input_either_shape(tmp_path, arrays, flat):
    images, _ = arrays
    np.save(tmp_path / "d.npy", images.reshape(len(images), -1) if flat else images)
    out = tmp_path / "a.aec"
    assert cli("pack", tmp_path / "d.npy", "-o", out, "-q").exit_code == 0
    assert np.array_equal(aec.decode(out), decoded_reference(images))


def test_npz_labels_and_npy_labels_file(tmp_path, arrays):
    images, labels = arrays
    np.savez(tmp_path / "d.npz", x=images, y=labels.astype(np.int64) * 1000)
    out = tmp_path / "a.aec"
    assert cli("pack", tmp_path / "d.npz", "-o", out, "-q").exit_code == 0
    assert cli("unpack", out, "--format", "npy", "-o", tmp_path / "back.npy", "-q").exit_code == 0
    assert np.array_equal(np.load(tmp_path / "back-labels.npy"), labels.astype(np.int64) * 1000)


def test_inverted_array_is_restored(tmp_path, arrays):
    images, _ = arrays
    np.save(tmp_path / "inv.npy", 255 - images)
    out = tmp_path / "a.aec"
    assert cli("pack", tmp_path / "inv.npy", "-o", out, "-q").exit_code == 0
    assert aec.info(out)["images_inverted"] == 48
    assert cli("unpack", out, "--format", "npy", "-o", tmp_path / "b.npy", "-q").exit_code == 0
    assert np.array_equal(np.load(tmp_path / "b.npy"), 255 - decoded_reference(images))


def test_arrays_beside_files_get_their_own_folder(tmp_path, arrays, example_digits):
    images, _ = arrays
    np.save(tmp_path / "more.npy", images[:5])
    out = tmp_path / "a.aec"
    assert cli("pack", example_digits, tmp_path / "more.npy", "-o", out, "-q").exit_code == 0
    assert cli("unpack", out, "-o", tmp_path / "u", "-q").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "u" / "more").iterdir()) == [f"{i}.png" for i in range(5)]
    assert len(list((tmp_path / "u").glob("*.png"))) == 48


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((3, 28, 28), np.float32), "uint8"),
        (np.zeros((3, 27, 27), np.uint8), "not [N, 28, 28]"),
        (np.zeros((3, 100), np.uint8), "not [N, 28, 28]"),
    ],
)
def test_bad_arrays_are_one_line_errors(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    result = cli("pack", tmp_path / "bad.npy", "-o", tmp_path / "a.aec")
    assert result.exit_code == 1 and message in result.stderr and "bad.npy" in result.stderr
    assert not (tmp_path / "a.aec").exists()


def test_corrupt_idx_is_an_error(tmp_path, arrays):
    images, _ = arrays
    (tmp_path / "x-images-idx3-ubyte").write_bytes(idx_bytes(images)[:-10])
    result = cli("pack", tmp_path / "x-images-idx3-ubyte", "-o", tmp_path / "a.aec")
    assert result.exit_code == 1 and "x-images-idx3-ubyte" in result.stderr


def test_restore_size_needs_png(tmp_path, example_digits):
    out = tmp_path / "a.aec"
    aec.pack([example_digits], out)
    result = cli("unpack", out, "--format", "npy", "--restore-size", "-o", tmp_path / "x.npy")
    assert result.exit_code == 1 and "--restore-size" in result.stderr


def test_large_raw_idx_and_npy_are_read_in_slices(tmp_path, example_images, monkeypatch):
    """Files over 1 MB are read slice by slice (flat memory); the result equals packing the array itself."""
    import aec.pack_inputs
    from aec.arrays import read_array_file
    from aec.filearray import FileArray

    images = np.concatenate([example_images] * 45)  # 2160 images, 1.7 MB
    (tmp_path / "big-images-idx3-ubyte").write_bytes(idx_bytes(images))
    np.save(tmp_path / "big.npy", images)
    monkeypatch.setattr(aec.pack_inputs, "ARRAY_SLICE", 500)
    for name in ("big-images-idx3-ubyte", "big.npy"):
        lazy, _ = read_array_file(tmp_path / name, (28, 28))
        assert isinstance(lazy, FileArray) and len(lazy) == 2160
        assert np.array_equal(lazy[100:103], images[100:103])
        out = tmp_path / f"{name}.aec"
        aec.pack([tmp_path / name], out)
        assert np.array_equal(aec.decode(out), aec.decode(aec.encode(images)))
    truncated = tmp_path / "cut-images-idx3-ubyte"
    truncated.write_bytes(idx_bytes(images)[:-100])
    with pytest.raises(aec.InputError, match="cut-images"):
        aec.pack([truncated], tmp_path / "cut.aec")


def test_pack_progress_moves_within_a_big_array_and_adds_up_to_the_inputs(tmp_path, example_images, example_digits):
    images = np.tile(example_images, (200, 1, 1))[:9000]  # three slices of up to 4096
    np.save(tmp_path / "big.npy", images)
    steps, totals = [], []
    aec.pack([tmp_path / "big.npy", example_digits], tmp_path / "a.aec", progress=steps.append, on_start=totals.append)
    assert totals == [49]  # the array and 48 image files
    assert len([s for s in steps if s < 1]) == 3  # the array moves the bar slice by slice
    assert abs(sum(steps) - 49) < 1e-9


def test_array_flags_is_is_array_file_for_every_name():
    from aec.arrays import array_flags, is_array_file

    plain = [f"{i:05d}.png" for i in range(50)]
    mixed = plain + ["a/train-images-idx3-ubyte.gz", "b.NPY", "c.npz", "d.IDX3", "idx/e.png", "f.npy.png"]
    for names in (plain, mixed, [], ["x.npy"]):
        assert array_flags(names) == [is_array_file(n) for n in names]
    assert not any(array_flags(plain)) and sum(array_flags(mixed)) >= 3
