"""A folder of mixed files, as users really have them, under each pack flag."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import aec
from aec.cli.main import app

VALID = [
    "colour.png",
    "alpha.png",
    "palette.png",
    "sixteen.png",
    "inverted.png",
    "photo.jpg",
    "bitmap.BMP",
    "web.webp",
    "ünïcødé/目录/ziffer 7.png",
    "plain.png",
]
INVALID = {"notes.txt": "not an image", "empty.png": "empty", "truncated.png": "cannot read", "big.png": "56x56"}


@pytest.fixture
def messy(tmp_path, example_images) -> Path:
    digit = example_images[0]  # a 7, white on black
    root = tmp_path / "messy"
    (root / "ünïcødé" / "目录").mkdir(parents=True)
    rgb = np.stack([digit, digit // 2, digit // 3], axis=-1)
    Image.fromarray(rgb, "RGB").save(root / "colour.png")
    la = np.stack([np.full_like(digit, 255), digit], axis=-1)  # white ink whose alpha is the digit
    Image.fromarray(la, "LA").save(root / "alpha.png")
    Image.fromarray(digit, "L").convert("P").save(root / "palette.png")
    Image.fromarray(digit.astype(np.uint16) * 257).save(root / "sixteen.png")
    Image.fromarray(255 - digit, "L").save(root / "inverted.png")
    Image.fromarray(digit, "L").save(root / "photo.jpg", quality=95)
    Image.fromarray(digit, "L").save(root / "bitmap.BMP", format="BMP")
    Image.fromarray(digit, "L").save(root / "web.webp", lossless=True)
    Image.fromarray(digit, "L").save(root / "ünïcødé" / "目录" / "ziffer 7.png")
    Image.fromarray(digit, "L").save(root / "plain.png")
    (root / "notes.txt").write_text("shopping list")
    (root / "empty.png").write_bytes(b"")
    (root / "truncated.png").write_bytes((root / "plain.png").read_bytes()[:60])
    Image.fromarray(digit, "L").resize((56, 56)).save(root / "big.png")
    (root / ".hidden.png").write_bytes((root / "plain.png").read_bytes())
    return root


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def stored_names(archive: Path) -> list[str]:
    from aec.container import Reader
    from aec.names import decode_table

    with open(archive, "rb") as f:
        reader = Reader(f, archive.stat().st_size, str(archive))
        return decode_table(reader.names_blob, reader.header.names_raw_length, reader.header.image_count)


def test_default_fails_naming_every_bad_file(messy, tmp_path):
    out = tmp_path / "m.aec"
    result = cli("pack", messy, "-o", out)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "4 of 14 inputs cannot be packed" in line
    for name, reason in INVALID.items():
        assert name in line
    assert "56x56" in line and "--resize" in line
    assert not out.exists()


def test_skip_invalid_packs_the_rest_and_reports_each(messy, tmp_path):
    out = tmp_path / "m.aec"
    result = cli("pack", messy, "-o", out, "--skip-invalid")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    for name, reason in INVALID.items():
        assert any(name in ln and reason in ln and ln.startswith("aec: skipped") for ln in lines), (name, lines)
    assert "4 invalid skipped" in lines[-1] and "1 hidden skipped" in lines[-1]
    assert sorted(stored_names(out)) == sorted(VALID)
    # Every input is either packed or reported.
    reported = {ln.split("skipped ", 1)[1].split(":")[0] for ln in lines if ln.startswith("aec: skipped")}
    everything = {p.relative_to(messy).as_posix() for p in messy.rglob("*") if p.is_file() and p.name != ".hidden.png"}
    assert {str(messy / n) for n in everything} == {str(messy / n) for n in stored_names(out)} | reported

    facts = json.loads(cli("info", out, "--json").stdout)
    assert facts["images_converted"] == 5  # colour, alpha, palette, 16-bit, and WebP (always decoded as RGB)
    assert facts["images_inverted"] == 1


def test_conversions_give_the_digit_back(messy, tmp_path, example_images):
    out = tmp_path / "m.aec"
    assert cli("pack", messy, "-o", out, "--skip-invalid", "-q").exit_code == 0
    assert cli("unpack", out, "-o", tmp_path / "u", "-q").exit_code == 0
    plain = np.asarray(Image.open(tmp_path / "u" / "plain.png"))
    for name in ["colour.png", "alpha.png", "palette.png", "sixteen.png", "photo.png", "bitmap.png", "web.png"]:
        got = np.asarray(Image.open(tmp_path / "u" / name)).astype(int)
        # Same digit as the plain copy (colour is luminance, so a little darker).
        assert np.corrcoef(got.ravel(), plain.ravel())[0, 1] > 0.9, name
    inverted = np.asarray(Image.open(tmp_path / "u" / "inverted.png")).astype(int)
    assert inverted.mean() > 180  # restored to black on white
    assert np.corrcoef((255 - inverted).ravel(), plain.ravel())[0, 1] > 0.98


def test_invert_never_and_always(messy, tmp_path):
    src = tmp_path / "two"
    src.mkdir()
    shutil.copy(messy / "inverted.png", src)
    shutil.copy(messy / "plain.png", src)
    for mode, expected in (("never", 0), ("always", 2), ("auto", 1)):
        out = tmp_path / f"{mode}.aec"
        assert cli("pack", src, "-o", out, "--invert", mode, "-q").exit_code == 0
        assert aec.info(out)["images_inverted"] == expected
    assert cli("pack", src, "-o", tmp_path / "x.aec", "--invert", "sometimes").exit_code == 2


def test_resize_and_restore_size(messy, tmp_path):
    out = tmp_path / "m.aec"
    result = cli("pack", messy, "-o", out, "--skip-invalid", "--resize")
    assert result.exit_code == 0
    assert "big.png" in stored_names(out)
    assert aec.info(out)["images_resized"] == 1
    assert cli("unpack", out, "-o", tmp_path / "small", "-q").exit_code == 0
    assert Image.open(tmp_path / "small" / "big.png").size == (28, 28)
    assert cli("unpack", out, "-o", tmp_path / "restored", "--restore-size", "-q").exit_code == 0
    big = np.asarray(Image.open(tmp_path / "restored" / "big.png")).astype(int)
    original = np.asarray(Image.open(messy / "big.png")).astype(int)
    assert big.shape == (56, 56)
    assert np.corrcoef(big.ravel(), original.ravel())[0, 1] > 0.9
    # Images that were not resized are untouched by --restore-size.
    assert Image.open(tmp_path / "restored" / "plain.png").size == (28, 28)


def test_uppercase_extension_and_case_collisions(tmp_path, example_images):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(example_images[1]).save(src / "A.PNG")
    Image.fromarray(example_images[2]).save(src / "b.Jpeg", format="JPEG")
    out = tmp_path / "c.aec"
    assert cli("pack", src, "-o", out, "-q").exit_code == 0
    assert cli("unpack", out, "-o", tmp_path / "u", "-q").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["A.png", "b.png"]
    Image.fromarray(example_images[3]).save(src / "A.jpg")
    result = cli("pack", src, "-o", tmp_path / "d.aec")
    assert result.exit_code == 1 and "same A.png" in result.stderr


def test_worker_processes_give_the_same_file_and_report(messy, tmp_path, monkeypatch):
    """Decoding in worker processes (used from PARALLEL_FROM files on) changes nothing a user can see."""
    import aec.pack_inputs
    import aec.workers

    one = aec.pack([messy], tmp_path / "one.aec", skip_invalid=True, workers=1)
    monkeypatch.setattr(aec.workers, "PARALLEL_FROM", 1)
    monkeypatch.setattr(aec.pack_inputs, "READ_BATCH", 3)
    two = aec.pack([messy], tmp_path / "two.aec", skip_invalid=True, workers=2)
    assert (tmp_path / "one.aec").read_bytes() == (tmp_path / "two.aec").read_bytes()
    assert sorted(map(str, one.skipped)) == sorted(map(str, two.skipped)) and len(two.skipped) == 4
    with pytest.raises(aec.InputError, match="4 of 14 inputs"):
        aec.pack([messy], tmp_path / "three.aec", workers=2)


def test_links_to_folders_are_reported_not_walked(tmp_path, example_digits):
    import os

    src = tmp_path / "src"
    shutil.copytree(example_digits, src / "real")
    os.symlink(src / "real", src / "alias")
    result = cli("pack", src, "-o", tmp_path / "l.aec")
    assert result.exit_code == 0
    assert "1 linked folders not walked" in result.stderr
    assert len(stored_names(tmp_path / "l.aec")) == 48
