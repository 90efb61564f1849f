"""Permanence: the decoder fingerprint, legacy models, pixel checksums, and the errors that say what to do."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import aec
from aec import container, exact, runtime, weights
from aec.cli.main import app
from aec.errors import ContainerError, ModelError
from aec.modelfile import read_model, write_model

runner = CliRunner()
VECTORS = Path(__file__).resolve().parent / "conformance"
BODY_AT = len(container.MAGIC) + 4


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def with_header_changed(data: bytes, change) -> bytes:
    """`data` with its header body passed through `change(body) -> body`, the header CRC made right again."""
    (length,) = struct.unpack_from("<H", data, BODY_AT - 2)
    body = change(bytearray(data[BODY_AT : BODY_AT + length]))
    prefix = data[len(container.MAGIC) : BODY_AT - 2] + struct.pack("<H", len(body))
    crc = struct.pack("<I", zlib.crc32(prefix + body))
    return data[: len(container.MAGIC)] + prefix + bytes(body) + crc + data[BODY_AT + length + 4 :]


def test_shipped_levels_decode_exactly_and_legacy_levels_stay():
    for level in range(1, 6):
        current = read_model(weights.FOLDER / f"mnist-q{level}.h5")
        legacy = read_model(weights.LEGACY / f"mnist-q{level}.h5")
        assert current.exact is not None and legacy.exact is None
        assert legacy.decoder_fingerprint == legacy.fingerprint  # what the files it made record
        assert current.decoder_fingerprint != current.fingerprint


def test_decoder_fingerprint_ignores_encoder_side_settings(shipped_model, tmp_path):
    annotated = dataclasses.replace(
        shipped_model,
        metadata={**shipped_model.metadata, "search": {"lambda": {"1": 1.0}}, "note": "re-annotated"},
        encoder=[dataclasses.replace(layer, bias=layer.bias + 1) for layer in shipped_model.encoder],
        name="renamed",
        fingerprint=b"",
    )
    assert annotated.fingerprint != shipped_model.fingerprint
    assert annotated.decoder_fingerprint == shipped_model.decoder_fingerprint
    write_model(annotated, tmp_path / "m.h5")
    assert read_model(tmp_path / "m.h5").decoder_fingerprint == shipped_model.decoder_fingerprint
    changed = dataclasses.replace(shipped_model, table_counts=shipped_model.table_counts + 1, fingerprint=b"")
    assert changed.decoder_fingerprint != shipped_model.decoder_fingerprint


def test_exact_decoder_sums_stay_exact_in_any_order(shipped_model, example_images):
    """Every partial sum is an integer below 2^24: float32 and exact integer products agree."""
    q = runtime.encode_latents(shipped_model, example_images)
    x = np.clip(q, -shipped_model.exact.input_limit, shipped_model.exact.input_limit).astype(np.int64)
    for i, layer in enumerate(shipped_model.exact.layers):
        exact_sum = x @ layer.kernel.astype(np.int64)
        assert np.abs(exact_sum).max() < exact.EXACT_SUM
        assert np.array_equal((x.astype(np.float32) @ layer.kernel_f32).astype(np.int64), exact_sum)
        z = np.rint((exact_sum.astype(np.float32) * layer.scale) + layer.offset)
        x = np.clip(z, 0, exact.HIDDEN_MAX).astype(np.int64) if i < len(shipped_model.exact.layers) - 1 else x


def test_exact_decoder_gives_the_same_pixels_in_parts_on_threads_as_whole_on_one(shipped_model):
    latents = np.random.default_rng(3).integers(-12, 13, (5000, shipped_model.latents))
    with exact._blas().limit(limits=1, user_api="blas"):
        whole = exact._decode(shipped_model.exact, latents)
    with exact._blas().limit(limits=3, user_api="blas"):
        assert exact._blas_threads() == 3  # so decode cuts the batch into 3 parts, one per thread
        parts = exact.decode(shipped_model.exact, latents)
    assert parts.dtype == np.uint8 and np.array_equal(parts, whole)
    assert len(np.unique(whole, axis=0)) > 4000  # real, varied pictures, not a constant


def test_exact_decoder_refuses_a_kernel_whose_sums_could_overflow(shipped_model):
    layers = list(shipped_model.exact.layers)  # 32 latents x 127 x the input limit would pass 2^24
    layers[0] = exact.ExactLayer(np.full_like(layers[0].kernel, 127), layers[0].scale, layers[0].offset)
    with pytest.raises(ModelError, match="beyond float32's exact range"):
        dataclasses.replace(
            shipped_model, exact=dataclasses.replace(shipped_model.exact, layers=layers), fingerprint=b""
        )


def test_new_files_record_pixel_checksums_and_old_ones_decode_without(example_images):
    new = aec.encode(example_images)
    assert aec.info(new)["format_version"] == "1.1" and aec.info(new)["pixel_checksums"]
    old = (VECTORS / "digits-q3-e0.aec").read_bytes()
    assert aec.info(old)["format_version"] == "1.0" and not aec.info(old)["pixel_checksums"]
    assert aec.info(old)["model"] == "mnist-q3 (legacy)"
    assert aec.decode(old).shape == (48, 28, 28)


def test_a_1_0_reader_reads_a_1_1_file_by_ignoring_the_extension(example_images):
    data = aec.encode(example_images)
    reader = container.Reader(__import__("io").BytesIO(data), len(data))
    assert reader.header.pixel_crcs is not None and reader.version == "1.1"
    base = container.Header(*container._BODY.unpack_from(data, BODY_AT))
    assert base.image_count == 48  # the 1.0 fields are where they were


def test_damaged_pixel_checksum_is_a_one_line_error(tmp_path, example_images):
    data = aec.encode(example_images)
    size = container._BODY.size

    def flip(body):
        body[size + 1] ^= 0xFF  # the first chunk's pixel CRC
        return body

    bad = tmp_path / "bad.aec"
    bad.write_bytes(with_header_changed(data, flip))
    with pytest.raises(ContainerError, match="decoded pixels differ"):
        aec.verify(bad)
    for args in (("unpack", bad, "--test"), ("unpack", bad, "-o", tmp_path / "out")):
        result = cli(*args)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "decoded pixels differ" in lines[0] and "report this" in lines[0]
    assert not (tmp_path / "out").exists()


def test_file_from_a_model_that_is_not_installed_says_what_to_do(tmp_path, example_images):
    data = with_header_changed(aec.encode(example_images), lambda body: bytearray(32) + body[32:])
    path = tmp_path / "foreign.aec"
    path.write_bytes(data)
    result = cli("unpack", path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "not shipped with this aec" in line and "--model FILE" in line and "upgrade" in line


def test_file_from_a_future_format_version_says_upgrade(tmp_path, example_images):
    data = bytearray(aec.encode(example_images))
    data[len(container.MAGIC)] = 3  # major version
    path = tmp_path / "future.aec"
    path.write_bytes(bytes(data))
    for args in (("info", path), ("unpack", path, "--test")):
        result = cli(*args)
        assert result.exit_code == 1
        line = result.stderr.strip()
        assert "\n" not in line and "format version 3." in line and "upgrade aec" in line
