"""aec.images: walking inputs, reading any image as 8-bit grayscale, safe output paths."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aec.errors import InputError, OutputError
from aec.fileio import safe_output_path
from aec.images import SMALL_FILE, encode_png, read_gray, read_gray_many
from aec.inputs import collect_inputs
from aec.name_rules import output_name
from aec.prepare import prepare
from aec.record import FLAG_CONVERTED


def gray(value: int = 0, size=(28, 28)) -> Image.Image:
    return Image.new("L", size, value)


def write(path: Path, img: Image.Image | None = None, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (img or gray()).save(path, **save)
    return path


# --- collect_inputs -------------------------------------------------------------


def test_folder_is_walked_recursively_in_sorted_order(tmp_path):
    root = tmp_path / "in"
    for rel in ["z.png", "b.png", "a/y.png", "a/x.png", "a/deeper/w.png", "c/v.png", "10.png", "9.png"]:
        write(root / rel)
    inputs = collect_inputs([root])
    # Each folder's files in sorted order, then its subfolders in sorted order.
    assert inputs.names == ["10.png", "9.png", "b.png", "z.png", "a/x.png", "a/y.png", "a/deeper/w.png", "c/v.png"]
    assert inputs.files == [str(root / n) for n in inputs.names]  # strings: cheaper than Paths
    assert inputs.hidden_skipped == []
    assert all("\\" not in n and not n.startswith("/") for n in inputs.names)


def test_hidden_files_and_folders_are_skipped_and_listed(tmp_path):
    root = tmp_path / "in"
    write(root / "a.png")
    write(root / ".DS_Store.png")
    write(root / ".git" / "inside.png")
    write(root / "sub" / ".hidden.png")
    write(root / "sub" / "b.png")
    inputs = collect_inputs([root])
    assert inputs.names == ["a.png", "sub/b.png"]
    assert sorted(inputs.hidden_skipped) == sorted(
        [root / ".DS_Store.png", root / ".git", root / "sub" / ".hidden.png"]
    )
    assert root / ".git" / "inside.png" not in inputs.hidden_skipped  # not walked at all


def test_single_file_is_stored_under_its_basename(tmp_path):
    path = write(tmp_path / "deep" / "er" / "digit.png")
    inputs = collect_inputs([path])
    assert inputs.names == ["digit.png"]
    assert inputs.files == [str(path)]
    inputs = collect_inputs([str(path)])  # str works as well as Path
    assert inputs.names == ["digit.png"]


def test_files_and_folders_mix_in_argument_order(tmp_path):
    f = write(tmp_path / "one.png")
    folder = tmp_path / "folder"
    write(folder / "two.png")
    inputs = collect_inputs([folder, f])
    assert inputs.names == ["two.png", "one.png"]
    assert inputs.files == [str(folder / "two.png"), str(f)]


def test_inputs_that_unpack_to_the_same_name_are_refused(tmp_path):
    write(tmp_path / "in" / "a.png")
    write(tmp_path / "in" / "a.jpg", format="JPEG")
    with pytest.raises(InputError, match=r"a\.png") as err:
        collect_inputs([tmp_path / "in"])
    assert "a.jpg" in str(err.value) and "same" in str(err.value)


def test_same_name_from_two_arguments_is_refused(tmp_path):
    a = write(tmp_path / "x" / "d.png")
    b = write(tmp_path / "y" / "d.png")
    with pytest.raises(InputError, match="same d.png"):
        collect_inputs([a, b])
    with pytest.raises(InputError, match="same d.png"):
        collect_inputs([a, a])


def test_missing_path_is_named(tmp_path):
    write(tmp_path / "ok.png")
    missing = tmp_path / "nope.png"
    with pytest.raises(InputError, match="no such file or folder") as err:
        collect_inputs([tmp_path / "ok.png", missing])
    assert str(missing) in str(err.value)


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no input files found"):
        collect_inputs([tmp_path / "empty"])
    write(tmp_path / "only_hidden" / ".x.png")
    with pytest.raises(InputError, match="no input files found"):
        collect_inputs([tmp_path / "only_hidden"])


def test_special_file_argument_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file or folder"):
        collect_inputs([fifo])


def test_links_to_files_are_followed_links_to_folders_are_not(tmp_path):
    target = write(tmp_path / "elsewhere" / "t.png")
    root = tmp_path / "in"
    write(root / "a.png")
    (root / "file_link.png").symlink_to(target)
    (root / "dir_link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    inputs = collect_inputs([root])
    assert inputs.names == ["a.png", "file_link.png"]
    assert inputs.files[1] == str(root / "file_link.png")


def test_file_name_with_backslash_cannot_be_stored(tmp_path):
    write(tmp_path / "in" / "a\\b.png")
    with pytest.raises(InputError, match="cannot be stored"):
        collect_inputs([tmp_path / "in"])


def test_non_utf8_file_name_is_refused_naming_the_file(tmp_path):
    root = tmp_path / "in"
    write(root / "ok.png")
    raw = os.path.join(os.fsencode(root), b"bad\xff.png")
    with open(raw, "wb") as f:
        gray().save(f, format="PNG")
    with pytest.raises(InputError, match="bad"):
        collect_inputs([root])


# --- read_gray ------------------------------------------------------------------


def test_grayscale_image_is_read_unchanged(tmp_path):
    pixels = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    path = write(tmp_path / "g.png", Image.fromarray(pixels, "L"))
    array, flags = read_gray(path)
    assert flags == 0
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, pixels)


def test_any_size_is_read(tmp_path):
    array, flags = read_gray(write(tmp_path / "g.png", gray(7, size=(40, 13))))
    assert array.shape == (13, 40)
    assert flags == 0 and np.all(array == 7)


def test_rgb_is_converted_by_luminance(tmp_path):
    img = Image.new("RGB", (28, 28), (255, 255, 255))
    img.putpixel((0, 0), (255, 0, 0))
    img.putpixel((1, 0), (0, 255, 0))
    img.putpixel((2, 0), (0, 0, 255))
    img.putpixel((3, 0), (0, 0, 0))
    array, flags = read_gray(write(tmp_path / "c.png", img))
    assert flags & FLAG_CONVERTED
    assert array.shape == (28, 28)
    assert list(array[0, :4]) == [76, 150, 29, 0]  # ITU-R 601 weights 0.299, 0.587, 0.114
    assert array[5, 5] == 255


def test_rgba_transparent_pixels_become_black_behind_light_ink(tmp_path):
    img = Image.new("RGBA", (28, 28), (255, 255, 255, 0))  # transparent white
    img.putpixel((3, 4), (255, 255, 255, 255))  # opaque white ink
    img.putpixel((5, 5), (255, 255, 255, 128))  # half-transparent white ink
    array, flags = read_gray(write(tmp_path / "a.png", img))
    assert flags & FLAG_CONVERTED
    assert array[0, 0] == 0
    assert array[4, 3] == 255
    assert abs(int(array[5, 5]) - 128) <= 1


def test_rgba_transparent_pixels_become_white_behind_dark_ink(tmp_path):
    img = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    img.putpixel((1, 1), (0, 0, 0, 255))
    array, _ = read_gray(write(tmp_path / "a.png", img))
    assert array[1, 1] == 0
    assert array[0, 0] == 255
    assert np.count_nonzero(array == 255) == 28 * 28 - 1


def test_fully_transparent_image_is_black(tmp_path):
    img = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    array, flags = read_gray(write(tmp_path / "t.png", img))
    assert flags & FLAG_CONVERTED
    assert not array.any()


def test_gray_with_alpha_is_converted(tmp_path):
    img = Image.new("LA", (28, 28), (200, 0))
    img.putpixel((2, 2), (200, 255))
    array, flags = read_gray(write(tmp_path / "la.png", img))
    assert flags & FLAG_CONVERTED
    assert array[2, 2] == 200 and array[0, 0] == 0


def test_palette_image_is_converted(tmp_path):
    img = Image.new("P", (28, 28), 0)
    img.putpalette([0, 0, 0, 255, 255, 255, 255, 0, 0] + [0] * (3 * 253))
    img.putpixel((1, 1), 1)
    img.putpixel((2, 2), 2)
    array, flags = read_gray(write(tmp_path / "p.png", img))
    assert flags & FLAG_CONVERTED
    assert (array[0, 0], array[1, 1], array[2, 2]) == (0, 255, 76)


def test_palette_transparency_is_composited(tmp_path):
    img = Image.new("P", (28, 28), 2)
    img.putpalette([0, 0, 0, 255, 255, 255, 128, 128, 128] + [0] * (3 * 253))
    img.putpixel((1, 1), 1)
    array, flags = read_gray(write(tmp_path / "pt.png", img, transparency=2))
    assert flags & FLAG_CONVERTED
    assert array[1, 1] == 255
    assert array[0, 0] == 0  # grey but transparent: background behind light ink


def test_sixteen_bit_keeps_the_top_eight_bits(tmp_path):
    wide = np.zeros((28, 28), np.uint16)
    wide[0, :4] = [65535, 256, 255, 0x8000]
    img = Image.fromarray(wide)
    assert img.mode == "I;16"
    path = write(tmp_path / "w.png", img)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    array, flags = read_gray(path)
    assert flags & FLAG_CONVERTED
    assert list(array[0, :4]) == [255, 1, 0, 128]


def test_float_image_is_clipped(tmp_path):
    values = np.zeros((28, 28), np.float32)
    values[0, :4] = [-5.0, 100.7, 300.0, np.nan]
    path = write(tmp_path / "f.tiff", Image.fromarray(values, "F"))
    array, flags = read_gray(path)
    assert flags & FLAG_CONVERTED
    assert list(array[0, :4]) == [0, 100, 255, 0]


def test_bilevel_image_is_converted(tmp_path):
    img = Image.new("1", (28, 28), 0)
    img.putpixel((3, 3), 1)
    array, flags = read_gray(write(tmp_path / "b.png", img))
    assert flags & FLAG_CONVERTED
    assert array[3, 3] == 255 and array[0, 0] == 0


def test_wrong_size_is_refused_by_prepare_naming_the_model_size():
    with pytest.raises(InputError, match="28x28") as err:
        prepare(np.zeros((27, 28), np.uint8), (28, 28), invert="never")
    assert "28x27" in str(err.value)


def test_text_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not the pixels you are looking for\n")
    with pytest.raises(InputError, match="not an image") as err:
        read_gray(path)
    assert str(path) in str(err.value)


def test_empty_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as err:
        read_gray(path)
    assert str(path) in str(err.value)


def test_truncated_png_is_refused_naming_it(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, "PNG")
    data = buffer.getvalue()
    # Cuts that lose pixel data (Pillow forgives a missing IEND chunk, which loses none).
    for cut in (len(data) // 2, len(data) - 60, 100, 40, 20):
        path = tmp_path / f"cut{cut}.png"
        path.write_bytes(data[:cut])
        with pytest.raises(InputError) as err:
            read_gray(path)
        assert str(path) in str(err.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(InputError, match="gone.png"):
        read_gray(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(InputError, match="dir.png"):
        read_gray(tmp_path / "dir.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_among_inputs_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(InputError, match="not a regular file") as err:
        read_gray(tmp_path / "pipe.png")  # would block forever if opened for reading plainly
    assert "pipe.png" in str(err.value)


# --- output names and paths -------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a/b.jpg", "a/b.png"),
        ("b.png", "b.png"),
        ("x.PNG", "x.png"),
        ("noext", "noext.png"),
        ("a.b/c", "a.b/c.png"),
        ("a/b.tar.gz", "a/b.tar.png"),
    ],
)
def test_output_name(name, expected):
    assert output_name(name) == expected


def test_safe_output_path_accepts_nested_names(tmp_path):
    out = tmp_path / "out"
    assert safe_output_path(out, "a/b/c.png") == out / "a" / "b" / "c.png"
    out.mkdir()
    assert safe_output_path(out, "x.png") == out / "x.png"


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "/etc/x.png", "C:/x.png", "a\\..\\x.png", ""])
def test_safe_output_path_refuses_escaping_names(tmp_path, name):
    with pytest.raises(OutputError, match="refusing to write"):
        safe_output_path(tmp_path / "out", name)


def test_safe_output_path_refuses_symlink_leading_outside(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(OutputError, match="outside"):
        safe_output_path(out, "link/x.png")
    assert not (tmp_path / "elsewhere" / "x.png").exists()


def test_safe_output_path_refuses_writing_through_a_file_symlink(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.png").symlink_to(tmp_path / "victim.png")
    with pytest.raises(OutputError, match="symbolic link"):
        safe_output_path(out, "x.png")


def test_safe_output_path_allows_links_that_stay_inside(tmp_path):
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "alias").symlink_to(out / "real", target_is_directory=True)
    assert safe_output_path(out, "alias/x.png") == out / "alias" / "x.png"


def test_encode_png_round_trips():
    pixels = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    data = encode_png(pixels)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), pixels)
    assert encode_png(pixels) == data


# --- folders no walk may lose: very deep, or too deep to list --------------------------


def _deep(root, names: list[str], png: bytes) -> None:
    """Make root/names[0]/names[1]/... with a PNG in the last, through directory descriptors
    (the whole path may be longer than the system lets a single call name)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("x.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, png)
        os.close(out)
    finally:
        os.close(fd)


def _remove_deep(root, names: list[str]) -> None:
    """Undo _deep, bottom up through descriptors: pytest's own clean-up (shutil.rmtree) recurses once
    per level and would fail on a tree this deep."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for name in names:
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        os.unlink("x.png", dir_fd=fds[-1])
        for name, parent in zip(reversed(names), reversed(fds[:-1])):
            os.rmdir(name, dir_fd=parent)
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture()
def deep_folder(tmp_path, example_digits):
    """tmp_path/in with a PNG 1,500 folders down (deeper than Python's recursion limit), removed afterwards."""
    names = ["d"] * 1500
    (tmp_path / "in").mkdir()
    _deep(tmp_path / "in", names, (example_digits / "00000_7.png").read_bytes())
    yield tmp_path / "in"
    _remove_deep(tmp_path / "in", names)


def test_a_folder_deeper_than_the_recursion_limit_packs(tmp_path, deep_folder):
    import aec

    result = aec.pack([deep_folder], tmp_path / "deep.aec")
    assert result.images == 1
    assert [m.name for m in aec.list_members(tmp_path / "deep.aec")] == ["d/" * 1500 + "x.png"]


def test_a_folder_that_cannot_be_listed_is_reported_not_skipped(tmp_path, example_digits):
    import aec

    png = (example_digits / "00000_7.png").read_bytes()
    root = tmp_path / "in"
    root.mkdir()
    (root / "top.png").write_bytes(png)
    _deep(root, ["n" * 200] * 25, png)  # 5,000 bytes of path below `in`: longer than PATH_MAX
    with pytest.raises(InputError, match="folders cannot be read .*cannot list this folder"):
        aec.pack([root], tmp_path / "x.aec")
    assert not (tmp_path / "x.aec").exists()
    result = aec.pack([root], tmp_path / "y.aec", skip_invalid=True)
    assert result.images >= 1 and any("cannot list this folder" in why for _, why in result.skipped)


def test_a_batch_read_gives_each_file_its_pixels_or_its_own_error(tmp_path):
    rng = np.random.default_rng(3)
    digits = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    big = rng.integers(0, 256, (1100, 1000), dtype=np.uint8)  # over SMALL_FILE stored: read from the open file
    colour = np.stack([digits[0], digits[1], digits[2]], axis=-1)
    paths = [
        write(tmp_path / "a.png", Image.fromarray(digits[0])),
        tmp_path / "missing.png",
        write(tmp_path / "b.png", Image.fromarray(digits[1])),
        write(tmp_path / "rgb.png", Image.fromarray(colour)),
        tmp_path / "folder",
        tmp_path / "empty.png",
        write(tmp_path / "big.png", Image.fromarray(big), compress_level=0),
        write(tmp_path / "c.png", Image.fromarray(digits[2])),
    ]
    paths[4].mkdir()
    paths[5].write_bytes(b"")
    assert paths[6].stat().st_size > SMALL_FILE
    read = read_gray_many(paths)
    assert len(read) == len(paths)
    for i, pixels in ((0, digits[0]), (2, digits[1]), (7, digits[2]), (6, big)):
        array, flags, size = read[i]
        assert np.array_equal(array, pixels) and flags == 0 and size == paths[i].stat().st_size
    array, flags, _ = read[3]
    assert flags == FLAG_CONVERTED and np.array_equal(array, read_gray(paths[3])[0])
    for i, problem in ((1, "No such file"), (4, "not a regular file"), (5, "empty file")):
        assert isinstance(read[i], InputError) and str(read[i]).startswith(f"{paths[i]}: ") and problem in str(read[i])
