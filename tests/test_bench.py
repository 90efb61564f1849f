"""`aec bench` on the user's own images."""

import json

import numpy as np
from typer.testing import CliRunner

from aec.cli.main import app


def test_bench_folder_json(example_digits):
    result = CliRunner().invoke(app, ["bench", str(example_digits), "--json"])
    assert result.exception is None and result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["codec"]: r for r in report["rows"]}
    assert report["images"] == 48
    aec = rows["aec -Q 3 effort 0"]
    assert 10 < aec["bytes_per_image"] < 25 and aec["psnr_db"] > 20
    searched = rows["aec -Q 3 effort 1"]  # the default efforts: 0 and 1
    assert searched["bytes_per_image"] <= aec["bytes_per_image"] and searched["psnr_db"] > aec["psnr_db"] + 0.3
    assert not any("effort 2" in name for name in rows)
    assert rows["PNG"]["psnr_db"] is None  # lossless (JSON null)
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout
    # aec is many times smaller than PNG and WebP on digits.
    assert rows["PNG"]["bytes_per_image"] > 8 * aec["bytes_per_image"]
    assert rows["WebP q0"]["bytes_per_image"] > 3 * aec["bytes_per_image"]


def test_bench_array_table(tmp_path, example_images):
    np.save(tmp_path / "d.npy", example_images[:20])
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "d.npy"), "--limit", "10"])
    assert result.exit_code == 0
    assert result.stdout.startswith("10 images from") and "WebP lossless" in result.stdout
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "d.npy"), "--limit", "5", "-e", "2"])
    assert result.exit_code == 0 and "-Q 1 effort 2" in result.stdout and "effort 0" not in result.stdout
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "d.npy"), "-e", "5"])
    assert result.exit_code == 2 and "--effort" in result.output


def test_bench_bad_input(tmp_path):
    (tmp_path / "x.txt").write_text("no")
    result = CliRunner().invoke(app, ["bench", str(tmp_path)])
    assert result.exit_code == 1 and "x.txt" in result.stderr


def test_bench_counts_the_bytes_pack_writes_with_the_real_names(tmp_path, example_digits):
    import aec

    result = CliRunner().invoke(app, ["bench", str(example_digits), "--json", "-e", "0"])
    rows = {r["codec"]: r for r in json.loads(result.stdout)["rows"]}
    for level in (1, 3):
        packed = aec.pack([example_digits], tmp_path / f"q{level}.aec", quality=level)
        assert rows[f"aec -Q {level} effort 0"]["bytes_per_image"] == packed.total_bytes / 48


def test_encode_takes_names_and_checks_them(example_images):
    import pytest

    import aec

    data = aec.encode(example_images[:2], names=["a/x.png", "b.jpg"])
    assert [m.name for m in aec.list_members(data)] == ["a/x.png", "b.jpg"]
    for names, message in (
        (["../x.png", "y.png"], "cannot be stored"),
        (["x.png", "x.jpg"], "same file"),
        (["x"], "1 names"),
    ):
        with pytest.raises(aec.InputError, match=message):
            aec.encode(example_images[:2], names=names)
