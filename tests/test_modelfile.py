"""aec.modelfile: the Model, its fingerprint, and the HDF5 model file."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from aec.errors import ModelError
from aec.modelfile import Dense, Model, compute_fingerprint, int8_layer, read_model, write_model


def parts(**changes) -> dict:
    rng = np.random.default_rng(0)
    fields = dict(
        name="t",
        quality=1,
        image_shape=(2, 2),
        encoder=[
            Dense(rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32), "relu"),
            Dense(rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32), "linear"),
        ],
        decoder=[Dense(rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32), "sigmoid")],
        quant_step=np.array([0.5, 1.0, 2.0], np.float32),
        table_low=np.array([-2, -2, 0], np.int32),
        table_counts=np.array([[1, 2, 50, 2, 1, 1], [1, 1, 1, 1, 1, 1], [100, 10, 1, 1, 1, 7]], np.uint32),
        metadata={"trained_on": "unit test", "epochs": 3, "psnr": 21.5},
    )
    fields.update(changes)
    return fields


def make_model(**changes) -> Model:
    return Model(**parts(**changes))


def assert_same_model(a: Model, b: Model) -> None:
    assert (a.name, a.quality, tuple(a.image_shape), a.metadata) == (
        b.name,
        b.quality,
        tuple(b.image_shape),
        b.metadata,
    )
    for la, lb in zip(a.encoder + a.decoder, b.encoder + b.decoder, strict=True):
        assert la.activation == lb.activation
        np.testing.assert_array_equal(la.kernel, lb.kernel)
        np.testing.assert_array_equal(la.bias, lb.bias)
        assert la.kernel.dtype == lb.kernel.dtype == np.float32
    for name in ("quant_step", "table_low", "table_counts"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert a.fingerprint == b.fingerprint


@pytest.fixture
def model_file(tmp_path):
    model = make_model()
    path = write_model(model, tmp_path / "m.h5")
    return model, path


# --- write / read ----------------------------------------------------------------


def test_round_trip(model_file):
    model, path = model_file
    assert path.is_file()
    loaded = read_model(path)
    assert_same_model(model, loaded)
    assert loaded.latents == 3
    assert loaded.pixels == 4
    assert len(loaded.fingerprint) == 32
    assert loaded.fingerprint_hex == model.fingerprint.hex()


def test_write_leaves_no_temporary_file_and_overwrites(tmp_path):
    path = tmp_path / "m.h5"
    write_model(make_model(), path)
    other = make_model(name="other")
    write_model(other, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]
    assert read_model(path).name == "other"


def test_file_layout(model_file):
    model, path = model_file
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "aec-model"
        assert f.attrs["format_version"] == 1
        assert f.attrs["fingerprint"] == model.fingerprint.hex()
        assert int(f.attrs["latents"]) == 3
        assert int(f["encoder"].attrs["layers"]) == 2
        assert f["encoder/0"].attrs["activation"] == "relu"
        assert f["entropy/counts"].shape == (3, 6)
        np.testing.assert_array_equal(f["quant/step"][()], model.quant_step)


def test_write_into_missing_folder_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot write model file"):
        write_model(make_model(), tmp_path / "missing" / "m.h5")


# --- fingerprint -------------------------------------------------------------------


def test_fingerprint_is_deterministic():
    assert make_model().fingerprint == make_model().fingerprint == compute_fingerprint(make_model())


def test_fingerprint_ignores_memory_layout_and_byte_order():
    base = make_model()
    p = parts()
    p["encoder"][0] = Dense(np.asfortranarray(p["encoder"][0].kernel), p["encoder"][0].bias, "relu")
    p["decoder"][0] = Dense(p["decoder"][0].kernel.astype(">f4"), p["decoder"][0].bias, "sigmoid")
    p["table_counts"] = p["table_counts"].astype(">u4")
    assert Model(**p).fingerprint == base.fingerprint


def _with_one_weight_changed() -> Model:
    p = parts()
    kernel = p["decoder"][0].kernel.copy()
    kernel[1, 2] = np.nextafter(kernel[1, 2], np.float32(np.inf))  # the smallest possible change
    p["decoder"][0] = Dense(kernel, p["decoder"][0].bias, "sigmoid")
    return Model(**p)


@pytest.mark.parametrize(
    "variant",
    [
        _with_one_weight_changed,
        lambda: make_model(quant_step=np.array([0.5, 1.0, 2.5], np.float32)),
        lambda: make_model(table_low=np.array([-2, -1, 0], np.int32)),
        lambda: make_model(
            table_counts=np.array([[1, 2, 50, 2, 1, 1], [1, 1, 1, 1, 1, 1], [100, 10, 1, 1, 1, 8]], np.uint32)
        ),
        lambda: make_model(metadata={"trained_on": "unit test", "epochs": 4, "psnr": 21.5}),
        lambda: make_model(metadata={}),
        lambda: make_model(name="t2"),
        lambda: make_model(quality=2),
    ],
)
def test_fingerprint_changes_with_any_content(variant):
    assert variant().fingerprint != make_model().fingerprint


def test_fingerprint_covers_activations():
    p = parts()
    p["encoder"][1] = Dense(p["encoder"][1].kernel, p["encoder"][1].bias, "relu")
    assert Model(**p).fingerprint != make_model().fingerprint


def test_given_fingerprint_is_kept():
    model = make_model(fingerprint=b"\x01" * 32)
    assert model.fingerprint == b"\x01" * 32


# --- damaged or foreign files ----------------------------------------------------------


@pytest.mark.parametrize("dataset", ["decoder/0/bias", "encoder/1/kernel", "quant/step", "entropy/counts"])
def test_edited_dataset_fails_the_fingerprint(model_file, dataset):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        values = f[dataset][()]
        values.flat[0] += 1
        f[dataset][...] = values
    with pytest.raises(ModelError, match="fingerprint"):
        read_model(path)


def test_edited_attribute_fails_the_fingerprint(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f.attrs["metadata"] = '{"epochs": 99}'
    with pytest.raises(ModelError, match="fingerprint"):
        read_model(path)


def test_edited_activation_fails_the_fingerprint(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f["encoder/1"].attrs["activation"] = "relu"
    with pytest.raises(ModelError, match="fingerprint"):
        read_model(path)


def test_missing_fingerprint_fails(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        del f.attrs["fingerprint"]
    with pytest.raises(ModelError, match="fingerprint"):
        read_model(path)


def test_storage_layout_does_not_matter(model_file):
    model, path = model_file
    with h5py.File(path, "r+") as f:
        kernel = f["decoder/0/kernel"][()]
        del f["decoder/0/kernel"]
        f.create_dataset("decoder/0/kernel", data=kernel.astype(np.float64), compression="gzip", chunks=kernel.shape)
    assert read_model(path).fingerprint == model.fingerprint


def test_non_hdf5_file(tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(ModelError, match="not a readable model file"):
        read_model(path)
    with pytest.raises(ModelError):
        read_model(tmp_path / "missing.h5")


def test_truncated_file(model_file, tmp_path):
    _, path = model_file
    data = path.read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        damaged = tmp_path / "cut.h5"
        damaged.write_bytes(data[:cut])
        with pytest.raises(ModelError):
            read_model(damaged)


def test_wrong_format_attribute(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = "keras"
    with pytest.raises(ModelError, match="not an aec model file"):
        read_model(path)


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(ModelError, match="not an aec model file"):
        read_model(path)


def test_newer_format_version(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 4
    with pytest.raises(ModelError, match="version 4 is not supported"):
        read_model(path)


# --- int8 kernels (format version 2) ---------------------------------------------


def _int8_model(model):
    return dataclasses.replace(
        model,
        encoder=[int8_layer(layer) for layer in model.encoder],
        decoder=[int8_layer(layer) for layer in model.decoder],
        fingerprint=b"",
    )


def test_int8_kernels_round_trip_exactly_in_a_version_2_file(model_file, tmp_path):
    model, _ = model_file
    small = _int8_model(model)
    assert small.fingerprint != model.fingerprint
    for before, after in zip(model.encoder + model.decoder, small.encoder + small.decoder):
        # within half a step of the per-column scale
        assert np.all(np.abs(before.kernel - after.kernel) <= after.kernel_scale / 2 + 1e-7)
    path = write_model(small, tmp_path / "small.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 2
        assert f["encoder/0/kernel"].dtype == np.int8
        assert f["encoder/0/kernel_scale"].dtype == np.float32
    back = read_model(path)
    assert back.fingerprint == small.fingerprint
    for a, b in zip(small.encoder + small.decoder, back.encoder + back.decoder):
        assert np.array_equal(a.kernel, b.kernel) and np.array_equal(a.kernel_scale, b.kernel_scale)


def test_float_models_stay_version_1(model_file):
    _, path = model_file
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 1


def test_kernel_that_is_not_int8_times_its_scale_is_refused(model_file, tmp_path):
    model, _ = model_file
    layer = int8_layer(model.encoder[0])
    layer.kernel = layer.kernel.copy()
    layer.kernel[0, 0] += layer.kernel_scale[0] / 3
    odd = dataclasses.replace(model, encoder=[layer] + model.encoder[1:], fingerprint=b"")
    with pytest.raises(ModelError, match="not int8"):
        write_model(odd, tmp_path / "odd.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]  # nothing half-written left behind


def test_damaged_int8_scale_is_caught_by_the_fingerprint(model_file, tmp_path):
    model, _ = model_file
    path = write_model(_int8_model(model), tmp_path / "small.h5")
    with h5py.File(path, "r+") as f:
        scale = f["decoder/0/kernel_scale"][()]
        scale[0] *= 2
        f["decoder/0/kernel_scale"][...] = scale
    with pytest.raises(ModelError, match="fingerprint mismatch"):
        read_model(path)


@pytest.mark.parametrize("dataset", ["entropy/low", "decoder/0/bias"])
def test_missing_dataset(model_file, dataset):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        del f[dataset]
    with pytest.raises(ModelError, match=f"lacks {dataset}"):
        read_model(path)


def test_dataset_with_wrong_rank(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        del f["quant/step"]
        f["quant/step"] = np.ones((3, 1), np.float32)
    with pytest.raises(ModelError, match="quant/step has the wrong shape"):
        read_model(path)


def test_missing_attribute(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        del f.attrs["quality"]
    with pytest.raises(ModelError, match="malformed"):
        read_model(path)


def test_damaged_metadata_json(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f.attrs["metadata"] = "{not json"
    with pytest.raises(ModelError, match="malformed"):
        read_model(path)


def test_damaged_dataset_bytes_raise_model_error(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        kernel = f["decoder/0/kernel"][()]
        del f["decoder/0/kernel"]
        f.create_dataset("decoder/0/kernel", data=kernel, compression="gzip", chunks=kernel.shape)
    with h5py.File(path, "r") as f:
        chunk = f["decoder/0/kernel"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    for i in range(chunk.byte_offset, chunk.byte_offset + chunk.size):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError):
        read_model(path)


@pytest.mark.parametrize(
    "changes",
    [
        dict(quant_step=np.array([0.5, 1.0, 2.0], np.float64)),
        dict(table_low=np.array([-2, -2, 0], np.int64)),
    ],
)
def test_model_with_other_dtypes_round_trips(tmp_path, changes):
    model = make_model(**changes)
    write_model(model, tmp_path / "m.h5")
    assert read_model(tmp_path / "m.h5").fingerprint == model.fingerprint


# --- Model validation -------------------------------------------------------------------


def _layer(shape_in, shape_out, activation="linear", fill=0.0):
    return Dense(np.full((shape_in, shape_out), fill, np.float32), np.zeros(shape_out, np.float32), activation)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(image_shape=(0, 2)), "bad image shape"),
        (dict(image_shape=(4097, 1)), "bad image shape"),
        (dict(encoder=[]), "empty encoder"),
        (dict(decoder=[]), "empty decoder"),
        (dict(encoder=[_layer(4, 3, "tanh")]), "unknown activation 'tanh'"),
        (dict(decoder=[_layer(3, 4, "softmax")]), "unknown activation"),
        (dict(encoder=[Dense(np.zeros((4, 3), np.float32), np.zeros(2, np.float32), "linear")]), "inconsistent shapes"),
        (dict(encoder=[Dense(np.zeros(12, np.float32), np.zeros(12, np.float32), "linear")]), "inconsistent shapes"),
        (dict(encoder=[_layer(4, 5), _layer(6, 3)]), "do not chain"),
        (dict(encoder=[_layer(5, 3)]), "encoder takes 5 inputs, images have 4"),
        (dict(decoder=[_layer(3, 5)]), "decoder gives 5 outputs, images have 4"),
        (dict(encoder=[_layer(4, 2)]), "latent count"),
        (dict(decoder=[_layer(2, 4)]), "latent count"),
        (dict(encoder=[_layer(4, 3, fill=np.nan)]), "non-finite weights"),
        (dict(decoder=[_layer(3, 4, fill=np.inf)]), "non-finite weights"),
        (dict(quant_step=np.array([1.0, 0.0, 1.0], np.float32)), "must be positive"),
        (dict(quant_step=np.array([1.0, -1.0, 1.0], np.float32)), "must be positive"),
        (dict(quant_step=np.array([1.0, np.nan, 1.0], np.float32)), "must be positive"),
        (dict(table_low=np.array([0, 0], np.int32)), "entropy tables do not match 3 latents"),
        (dict(table_counts=np.ones((2, 6), np.uint32)), "entropy tables do not match"),
        (dict(table_counts=np.ones(6, np.uint32)), "entropy tables do not match"),
        (dict(table_counts=np.ones((3, 1), np.uint32)), "table width 1 out of range"),
        (dict(table_counts=np.ones((3, (1 << 16) + 1), np.uint32)), "out of range"),
        (
            dict(table_counts=np.array([[1, 2, 50, 2, 1, 1], [1, 1, 1, 1, 1, 0], [100, 10, 1, 1, 1, 7]], np.uint32)),
            "non-zero escape count",
        ),
        (dict(table_low=np.array([-2, 2**30 + 1, 0], np.int32)), "range out of bounds"),
    ],
)
def test_model_validation(changes, message):
    with pytest.raises(ModelError, match=message):
        make_model(**changes)


def test_validation_accepts_the_bounds():
    model = make_model(table_low=np.array([-(2**30), 2**30, 0], np.int32), table_counts=np.ones((3, 2), np.uint32))
    assert model.table_counts.shape == (3, 2)


def test_read_model_revalidates(model_file):
    _, path = model_file
    with h5py.File(path, "r+") as f:
        f["encoder/0"].attrs["activation"] = "swish"
    with pytest.raises(ModelError, match="unknown activation 'swish'"):
        read_model(path)


def test_shipped_index_matches_the_model_files():
    """weights/index.json (used by `aec info` to name models without h5py) agrees with the files."""
    from aec import weights

    recorded = weights.index()
    files = {p.stem: p for p in weights.model_files()}
    assert set(recorded) == set(files)
    for name, path in files.items():
        assert recorded[name]["bytes"] == path.stat().st_size
        model = read_model(path)
        assert recorded[name]["fingerprint"] == model.fingerprint_hex
        assert recorded[name]["quality"] == model.quality
