"""aec.pack/unpack/encode/decode/info with the shipped model, on real files."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

import aec
from aec.container import header_size
from aec.metrics import mse, psnr


def test_pack_unpack_folder_round_trip(tmp_path, example_digits, example_images):
    out = tmp_path / "d.aec"
    result = aec.pack([example_digits], out)
    assert out.stat().st_size == result.total_bytes
    assert result.images == len(example_images) == 48
    assert result.header_bytes + result.names_bytes + result.payload_bytes == result.total_bytes

    unpacked = aec.unpack(out, tmp_path / "out")
    names = sorted(p.name for p in example_digits.glob("*.png"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    decoded = np.stack([np.asarray(Image.open(tmp_path / "out" / n)) for n in names])
    assert unpacked.images == 48
    assert decoded.dtype == np.uint8 and decoded.shape == (48, 28, 28)
    assert psnr(mse(example_images, decoded)) > 20.0
    # No temporary files are left behind.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_nested_and_unicode_names_survive(tmp_path, example_digits):
    src = tmp_path / "src"
    files = sorted(example_digits.glob("*.png"))[:4]
    targets = ["a/b/c/zwölf ziffern.png", "a/b/two words.png", "日本/一.png", "top.png"]
    for f, t in zip(files, targets):
        (src / t).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, src / t)
    aec.pack([src], tmp_path / "n.aec")
    aec.unpack(tmp_path / "n.aec", tmp_path / "out")
    got = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert got == sorted(targets)


def test_encode_decode_arrays(example_images):
    data = aec.encode(example_images)
    assert data.startswith(b"\x89AEC\r\n\x1a\n")
    decoded = aec.decode(data)
    assert decoded.shape == example_images.shape and decoded.dtype == np.uint8
    assert psnr(mse(example_images, decoded)) > 20.0
    # Same input, same bytes: the container is deterministic.
    assert aec.encode(example_images) == data


def test_chunks_split_and_join_exactly(example_images):
    one_chunk = aec.decode(aec.encode(example_images))
    data = aec.encode(example_images, chunk_size=7)
    assert aec.info(data)["chunks"] == 7
    assert np.array_equal(aec.decode(data), one_chunk)


def test_bytes_per_image_small_and_overhead_small(train_fixture):
    data = aec.encode(train_fixture)
    facts = aec.info(data)
    assert facts["images"] == 300
    assert facts["bytes_per_image"] <= 16
    # Header, names and chunk framing are a small share of the file.
    assert facts["latent_bytes"] / facts["total_bytes"] > 0.9
    assert facts["header_bytes"] == header_size() + 1 + 4 * facts["chunks"]  # 1.1: a pixel CRC per chunk


def test_info_reports_model_and_split(tmp_path, example_digits, shipped_model):
    out = tmp_path / "d.aec"
    aec.pack([example_digits], out)
    facts = aec.info(out)
    assert facts["model"] == aec.DEFAULT_MODEL
    assert facts["model_fingerprint"] == shipped_model.decoder_fingerprint.hex()
    assert facts["total_bytes"] == out.stat().st_size
    assert facts["header_bytes"] + facts["names_bytes"] + facts["payload_bytes"] == facts["total_bytes"]
    assert facts["first_names"][0] == "00000_7.png"


def test_existing_output_is_not_overwritten(tmp_path, example_digits):
    out = tmp_path / "d.aec"
    out.write_bytes(b"precious")
    with pytest.raises(aec.OutputError, match="already exists"):
        aec.pack([example_digits], out)
    assert out.read_bytes() == b"precious"
    aec.pack([example_digits], out, force=True)
    assert out.read_bytes() != b"precious"


def test_unpack_refuses_before_writing_when_names_exist(tmp_path, example_digits):
    out = tmp_path / "d.aec"
    aec.pack([example_digits], out)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "00005_1.png").write_bytes(b"mine")
    with pytest.raises(aec.OutputError, match="00005_1.png"):
        aec.unpack(out, dest)
    assert [p.name for p in dest.iterdir()] == ["00005_1.png"]
    assert (dest / "00005_1.png").read_bytes() == b"mine"
    aec.unpack(out, dest, force=True)
    assert len(list(dest.iterdir())) == 48


def test_bad_image_fails_whole_pack_naming_each(tmp_path, example_digits):
    src = tmp_path / "src"
    shutil.copytree(example_digits, src)
    (src / "notes.txt").write_text("not a digit")
    Image.new("L", (30, 30)).save(src / "big.png")
    out = tmp_path / "d.aec"
    with pytest.raises(aec.InputError) as err:
        aec.pack([src], out)
    message = str(err.value)
    assert "notes.txt" in message and "big.png" in message and "2 of 50" in message
    assert "\n" not in message
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_model_mismatch_is_a_clear_error(tmp_path, example_images, tiny_model_file):
    data = aec.encode(example_images)
    with pytest.raises(aec.ModelError, match="did not make this file"):
        aec.decode(data, model=tiny_model_file)
    # A container made by a model that is not shipped needs that model file.
    foreign = aec.encode(example_images, model=tiny_model_file)
    with pytest.raises(aec.ModelError, match="not shipped"):
        aec.decode(foreign)
    assert aec.decode(foreign, model=tiny_model_file).shape == example_images.shape


def test_pack_to_stream(example_digits):
    buffer = io.BytesIO()
    result = aec.pack([example_digits], buffer)
    assert len(buffer.getvalue()) == result.total_bytes
    assert aec.decode(buffer.getvalue()).shape == (48, 28, 28)


def test_encode_rejects_wrong_arrays():
    with pytest.raises(aec.InputError, match="uint8"):
        aec.encode(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(aec.InputError, match="28"):
        aec.encode(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(aec.InputError):
        aec.encode(np.zeros((0, 28, 28), np.uint8))


def test_unknown_model_name():
    with pytest.raises(aec.ModelError, match="no such model"):
        aec.resolve_model("no-such-model")


def test_unpack_in_worker_processes_writes_the_same_files(tmp_path, example_digits, monkeypatch):
    import aec.unpacking
    import aec.workers

    archive = tmp_path / "d.aec"
    aec.pack([example_digits], archive)
    aec.unpack(archive, tmp_path / "one", workers=1)
    monkeypatch.setattr(aec.workers, "PARALLEL_FROM", 1)
    monkeypatch.setattr(aec.unpacking, "WRITE_BATCH", 5)
    aec.unpack(archive, tmp_path / "two", workers=2)
    one = sorted((tmp_path / "one").iterdir())
    assert [p.name for p in one] == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert all(p.read_bytes() == (tmp_path / "two" / p.name).read_bytes() for p in one)
    # A failure in a worker still rolls everything back.
    (tmp_path / "three").mkdir()
    (tmp_path / "three" / "00030_3.png").mkdir()  # a folder in the way of one file, found only while writing
    with pytest.raises(aec.OutputError):
        aec.unpack(archive, tmp_path / "three", workers=2, force=True)
    assert [p.name for p in (tmp_path / "three").iterdir()] == ["00030_3.png"]
