"""The archive side: aec list, and unpacking only the members asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import aec
from aec.cli.main import app
from aec.errors import ContainerError, InputError
from aec.testing.hostile import with_header

runner = CliRunner()
VECTORS = Path(__file__).resolve().parent / "conformance"


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture()
def chunked(tmp_path, example_images):
    """The 48 example digits in chunks of 5, with labels, as an .npz pack."""
    np.savez(tmp_path / "d.npz", images=example_images, labels=np.arange(48) % 10)
    out = tmp_path / "d.aec"
    aec.pack([tmp_path / "d.npz"], out, chunk_size=5)
    return out


def test_list_shows_names_labels_and_flags_in_order():
    members = list(aec.list_members(VECTORS / "exact-flags-q2.aec"))
    assert [(m.name, m.label, m.flag_words) for m in members] == [
        ("colour.png", None, ["converted"]),
        ("inverted.png", None, ["inverted"]),
        ("plain.png", None, []),
        ("resized.png", None, ["resized"]),
    ]
    result = cli("list", VECTORS / "exact-labels-q3.aec", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and len(rows) == 40
    assert rows[0] == {"name": "00.png", "label": 5, "flags": []}
    plain = cli("list", VECTORS / "exact-flags-q2.aec").stdout.splitlines()
    assert plain == [
        "colour.png\t-\tconverted",
        "inverted.png\t-\tinverted",
        "plain.png\t-\t-",
        "resized.png\t-\tresized",
    ]


def test_list_needs_no_model_and_refuses_damage_in_one_line(tmp_path, chunked):
    (tmp_path / "foreign.aec").write_bytes(with_header(chunked.read_bytes(), fingerprint=bytes(32)))
    assert len(list(aec.list_members(tmp_path / "foreign.aec"))) == 48  # no such model: still listed
    damaged = bytearray(chunked.read_bytes())
    damaged[-3] ^= 0xFF  # the last chunk's latents: its CRC no longer holds
    (tmp_path / "bad.aec").write_bytes(bytes(damaged))
    result = cli("list", tmp_path / "bad.aec")
    assert result.exit_code == 1 and "chunk 10 of 10: CRC-32 mismatch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unpack_members_by_name_output_name_and_glob(tmp_path, chunked):
    result = aec.unpack(chunked, tmp_path / "out", members=["07.png", "1*", "4[05]*"])
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "07.png",
        "10.png",
        "11.png",
        "12.png",
        "13.png",
        "14.png",
        "15.png",
        "16.png",
        "17.png",
        "18.png",
        "19.png",
        "40.png",
        "45.png",
    ]
    assert result.images == 13 and result.labels.tolist() == [7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 5]
    everything = aec.decode(chunked)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "45.png")), everything[45])


def test_members_decode_only_the_chunks_that_hold_them(tmp_path, chunked):
    data = bytearray(chunked.read_bytes())
    data[-3] ^= 0xFF  # damage the last chunk (images 45-47)
    damaged = tmp_path / "damaged.aec"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ContainerError, match="chunk 10 of 10"):
        aec.unpack(damaged, tmp_path / "all")
    assert not (tmp_path / "all").exists()
    aec.unpack(damaged, tmp_path / "some", members=["0*"])  # chunks 1 and 2 only
    assert len(list((tmp_path / "some").iterdir())) == 10


def test_members_that_select_nothing_are_named_and_nothing_is_written(tmp_path, chunked):
    result = cli("unpack", chunked, "07.png", "nope.png", "z*", "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "'nope.png'" in line and "'z*'" in line and "07.png" not in line.replace("'07.png'", "")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="no stored name matches"):
        aec.unpack(chunked, tmp_path / "out", members=["../etc/passwd"])


def test_members_as_one_array_file(tmp_path, chunked):
    aec.unpack(chunked, tmp_path / "sel.npy", format="npy", members=["2?.png"])
    images = np.load(tmp_path / "sel.npy")
    assert images.shape == (10, 28, 28)
    assert np.load(tmp_path / "sel-labels.npy").tolist() == list(range(10))
    assert np.array_equal(images, aec.decode(chunked)[20:30])
    aec.unpack(chunked, tmp_path / "sel.npz", format="npz", members=["03.png", "47.png"])
    with np.load(tmp_path / "sel.npz") as npz:
        assert npz["names"].tolist() == ["03.png", "47.png"] and npz["labels"].tolist() == [3, 7]


def test_members_respect_existing_files(tmp_path, chunked):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "05.png").write_bytes(b"mine")
    result = cli("unpack", chunked, "05.png", "06.png", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert (tmp_path / "out" / "05.png").read_bytes() == b"mine" and not (tmp_path / "out" / "06.png").exists()


# --- aec.open: the file as a dataset -------------------------------------------------


@pytest.fixture()
def inverted_pack(tmp_path, example_images):
    """The example digits, every third one stored inverted (dark on light), in chunks of 5, with labels."""
    images = example_images.copy()
    images[::3] = 255 - images[::3]
    np.savez(tmp_path / "mixed.npz", images=images, labels=np.arange(48) % 10)
    out = tmp_path / "mixed.aec"
    aec.pack([tmp_path / "mixed.npz"], out, chunk_size=5)
    return out, images


def test_open_gives_names_labels_and_images_as_unpack_writes_them(tmp_path, inverted_pack):
    path, _ = inverted_pack
    aec.unpack(path, tmp_path / "all.npy", format="npy")
    expected = np.load(tmp_path / "all.npy")
    with aec.open(path) as data:
        assert len(data) == 48 and data.names[:2] == ["00.png", "01.png"]
        assert data.labels.tolist() == [i % 10 for i in range(48)]
        assert np.array_equal(data[7], expected[7]) and np.array_equal(data[-1], expected[47])
        assert np.array_equal(data[10:20:3], expected[10:20:3])
        assert np.array_equal(data[[46, 0, 12, 12]], expected[[46, 0, 12, 12]])
        mask = np.arange(48) % 7 == 0
        assert np.array_equal(data[mask], expected[mask])
        batches = list(data.batches(20))
        assert [len(b[0]) for b in batches] == [20, 20, 8]
        assert np.array_equal(np.concatenate([b[0] for b in batches]), expected)
        for bad in (48, -49):
            with pytest.raises(IndexError):
                data[bad]
        with pytest.raises(IndexError):
            data[np.array([0.5])]


def test_open_reads_only_the_chunks_it_needs(tmp_path, inverted_pack):
    path, _ = inverted_pack
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # the last chunk (images 45-47) fails its CRC
    damaged = tmp_path / "damaged.aec"
    damaged.write_bytes(bytes(data))
    with aec.open(damaged) as reader:
        assert reader[:45].shape == (45, 28, 28)
        with pytest.raises(ContainerError, match="chunk 10 of 10: CRC-32 mismatch"):
            reader[46]


def test_open_checks_the_pixels_against_the_file(tmp_path, example_images):
    from aec import container
    from aec.testing.hostile import HEADER_START

    data = bytearray(aec.encode(example_images))
    data[HEADER_START + container._BODY.size + 1] ^= 0xFF  # chunk 1's pixel checksum
    body_length = int.from_bytes(data[HEADER_START - 2 : HEADER_START], "little")
    end = HEADER_START + body_length
    data[end : end + 4] = __import__("zlib").crc32(bytes(data[8:end])).to_bytes(4, "little")
    (tmp_path / "bad.aec").write_bytes(bytes(data))
    with pytest.raises(ContainerError, match="decoded pixels differ"):
        aec.open(tmp_path / "bad.aec")  # before any image is read


def test_tf_dataset_batches(inverted_pack):
    tf = pytest.importorskip("tensorflow")
    path, _ = inverted_pack
    with aec.open(path) as data:
        batches = list(data.tf_dataset(32))
        assert [tuple(images.shape) for images, _ in batches] == [(32, 28, 28), (16, 28, 28)]
        assert batches[0][0].dtype == tf.uint8 and batches[1][1].numpy().tolist() == [i % 10 for i in range(32, 48)]
        assert np.array_equal(batches[1][0].numpy(), data[32:])


# --- aec show: a contact sheet -------------------------------------------------------


def test_show_writes_a_sheet_of_the_chosen_images(tmp_path, example_digits):
    from PIL import Image

    from aec.sheet import GAP, PAIR_GAP

    packed = tmp_path / "d.aec"
    aec.pack([example_digits], packed)
    result = cli("show", packed, "0000[0-4]_*", "-o", tmp_path / "s.png", "--columns", "5", "--scale", "1")
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "s.png")
    sheet = np.asarray(Image.open(tmp_path / "s.png"))
    assert sheet.shape == (28 + 2 * GAP, 5 * (28 + GAP) + GAP)
    assert np.array_equal(sheet[GAP : GAP + 28, GAP : GAP + 28], aec.decode(packed)[0])
    compared = tmp_path / "c.png"
    cli("show", packed, "00003_0.png", "--compare", example_digits, "-o", compared, "--scale", "2")
    pair = np.asarray(Image.open(compared))
    assert pair.shape == (2 * (28 + 2 * GAP), 2 * (2 * 28 + PAIR_GAP + 2 * GAP))
    original = np.asarray(Image.open(example_digits / "00003_0.png"))
    assert np.array_equal(pair[2 * GAP : 2 * GAP + 56 : 2, 2 * GAP : 2 * GAP + 56 : 2], original)


def test_show_errors_are_one_line(tmp_path, example_digits):
    packed = tmp_path / "d.aec"
    aec.pack([example_digits], packed)
    (tmp_path / "taken.png").write_bytes(b"mine")
    for args, message in (
        (("show", packed, "nope*", "-o", tmp_path / "x.png"), "no stored name matches 'nope*'"),
        (("show", packed, "-o", tmp_path / "taken.png"), "already exists"),
        (("show", packed, "--compare", tmp_path, "-o", tmp_path / "y.png"), "no original to compare with"),
    ):
        result = cli(*args)
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "taken.png").read_bytes() == b"mine" and not (tmp_path / "y.png").exists()


# --- aec cat: joining files ----------------------------------------------------------


@pytest.fixture()
def halves(tmp_path, example_digits):
    """The 48 example digits as two folders of 24."""
    files = sorted(example_digits.glob("*.png"))
    for half, part in (("a", files[:24]), ("b", files[24:])):
        (tmp_path / half).mkdir()
        for f in part:
            (tmp_path / half / f.name).write_bytes(f.read_bytes())
    return tmp_path / "a", tmp_path / "b"


@pytest.mark.parametrize("chunk_size", [8, 5], ids=["chunks copied", "chunks cut anew"])
def test_cat_gives_the_file_pack_writes_for_the_inputs_together(tmp_path, halves, chunk_size):
    a, b = halves
    aec.pack([a], tmp_path / "a.aec", chunk_size=chunk_size)
    aec.pack([b], tmp_path / "b.aec", chunk_size=chunk_size)
    aec.pack([a, b], tmp_path / "together.aec", chunk_size=chunk_size)
    result = aec.cat([tmp_path / "a.aec", tmp_path / "b.aec"], tmp_path / "joined.aec")
    assert result.copied_chunks == (chunk_size == 8) and result.images == 48
    assert (tmp_path / "joined.aec").read_bytes() == (tmp_path / "together.aec").read_bytes()
    assert aec.verify(tmp_path / "joined.aec")["images"] == 48


def test_cat_keeps_labels_and_records(tmp_path, halves, example_images):
    a, _ = halves
    np.savez(tmp_path / "l.npz", images=example_images[:10], labels=np.arange(10))
    aec.pack([tmp_path / "l.npz"], tmp_path / "l.aec")
    aec.pack([a], tmp_path / "a.aec")
    result = cli("cat", tmp_path / "l.aec", tmp_path / "a.aec", "-o", tmp_path / "j.aec")
    assert result.exit_code == 0 and "joined 2 files, 34 images" in result.stderr
    members = list(aec.list_members(tmp_path / "j.aec"))
    assert [m.label for m in members] == list(range(10)) + [None] * 24
    assert [m.name for m in members][:2] == ["0.png", "1.png"] and members[10].name == "00000_7.png"


def test_cat_refuses_duplicates_other_models_and_existing_output(tmp_path, halves):
    a, b = halves
    aec.pack([a], tmp_path / "a.aec")
    aec.pack([a], tmp_path / "a2.aec")
    aec.pack([b], tmp_path / "b1.aec", quality=1)
    for args, message in (
        ((tmp_path / "a.aec", tmp_path / "a2.aec"), "'00000_7.png' is also in"),
        ((tmp_path / "a.aec", tmp_path / "b1.aec"), "only files of one model join"),
        ((tmp_path / "a.aec", tmp_path / "nope.aec"), "nope.aec: cannot open"),
    ):
        result = cli("cat", *args, "-o", tmp_path / "out.aec")
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out.aec").exists()
    (tmp_path / "taken.aec").write_bytes(b"mine")
    assert cli("cat", tmp_path / "a.aec", "-o", tmp_path / "taken.aec").exit_code == 1
    assert (tmp_path / "taken.aec").read_bytes() == b"mine"


def test_torch_dataset_items(inverted_pack):
    torch = pytest.importorskip("torch")  # not a dependency: skipped where PyTorch is not installed
    path, _ = inverted_pack
    with aec.open(path) as data:
        items = data.torch_dataset()
        image, label = items[13]
        assert len(items) == 48 and image.dtype == torch.uint8 and label == 3
        assert np.array_equal(image.numpy(), data[13])
