"""The aec command line: through typer's CliRunner and as a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aec.cli.main import app

runner = CliRunner()
AEC = [sys.executable, "-m", "aec"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    # An uncaught exception exits 1 with nothing on stderr: make it visible.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_aec(*args, cwd=None, stdin=None):
    env = dict(os.environ)
    return subprocess.run(AEC + [str(a) for a in args], capture_output=True, cwd=cwd, input=stdin, env=env)


def test_pack_info_unpack(tmp_path, example_digits):
    out = tmp_path / "d.aec"
    result = invoke("pack", example_digits, "-o", out)
    assert result.exit_code == 0
    assert "packed 48 images" in result.stderr
    result = invoke("info", out, "--json")
    assert result.exit_code == 0
    facts = json.loads(result.stdout)
    assert facts["images"] == 48 and facts["total_bytes"] == out.stat().st_size
    result = invoke("info", out)
    assert "bytes per image" in result.stdout and "mnist-q3" in result.stdout
    result = invoke("unpack", out, "-o", tmp_path / "out")
    assert result.exit_code == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 48


def test_unpack_default_output_folder(tmp_path, example_digits):
    invoke("pack", example_digits, "-o", tmp_path / "digits.aec")
    os.chdir(tmp_path)
    assert invoke("unpack", "digits.aec").exit_code == 0
    assert len(list((tmp_path / "digits").glob("*.png"))) == 48


def test_quiet_prints_nothing(tmp_path, example_digits):
    result = invoke("pack", example_digits, "-o", tmp_path / "d.aec", "-q")
    assert result.exit_code == 0 and result.output == ""


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "too short"),
        (b"hello world, not an aec file", "bad signature"),
        (b"\x89AEC\n\x1a\n" + bytes(100), "text-mode"),
    ],
)
def test_bad_container_is_one_line_exit_1(tmp_path, content, message):
    bad = tmp_path / "bad.aec"
    bad.write_bytes(content)
    for command in (["info", bad], ["unpack", bad, "-o", tmp_path / "o"]):
        result = invoke(*command)
        assert result.exit_code == 1
        assert message in result.stderr and str(bad) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tmp_path):
    assert invoke("pack").exit_code == 2
    assert invoke("pack", tmp_path).exit_code == 2  # no -o
    assert invoke("frobnicate").exit_code == 2
    assert invoke("unpack", "-").exit_code == 2  # stdin needs -o


def test_effort_packs_smaller_or_better_files_that_unpack_as_usual(tmp_path, example_digits):
    assert invoke("pack", example_digits, "-o", tmp_path / "plain.aec", "-q").exit_code == 0
    result = invoke("pack", example_digits, "-o", tmp_path / "searched.aec", "--effort", "1", "-q")
    assert result.exit_code == 0
    assert (tmp_path / "searched.aec").stat().st_size <= (tmp_path / "plain.aec").stat().st_size
    assert invoke("unpack", tmp_path / "searched.aec", "-o", tmp_path / "out", "-q").exit_code == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 48
    bad = invoke("pack", example_digits, "-o", tmp_path / "x.aec", "-e", "3")
    assert bad.exit_code == 2 and "--effort" in bad.output and not (tmp_path / "x.aec").exists()


def test_existing_output_needs_force(tmp_path, example_digits):
    out = tmp_path / "d.aec"
    out.write_bytes(b"x")
    result = invoke("pack", example_digits, "-o", out)
    assert result.exit_code == 1 and "--force" in result.stderr
    assert out.read_bytes() == b"x"
    assert invoke("pack", example_digits, "-o", out, "-f").exit_code == 0


def test_version():
    import aec

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"aec {aec.__version__}"


def test_real_process_pipe_and_exit_codes(tmp_path, example_digits):
    packed = run_aec("pack", example_digits, "-o", "-", "-q")
    assert packed.returncode == 0 and packed.stderr == b""
    unpacked = run_aec("unpack", "-", "-o", tmp_path / "out", stdin=packed.stdout)
    assert unpacked.returncode == 0, unpacked.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 48
    missing = run_aec("info", tmp_path / "missing.aec")
    assert missing.returncode == 1
    assert missing.stderr.decode().count("\n") == 1 and b"Traceback" not in missing.stderr
    assert run_aec("pack").returncode == 2


def test_debug_shows_traceback(tmp_path):
    result = run_aec("info", tmp_path / "missing.aec", "--debug")
    assert result.returncode == 1 and b"Traceback" in result.stderr


def test_installed_console_script(tmp_path, example_digits):
    script = Path(sys.executable).parent / "aec"
    if not script.exists():
        pytest.skip("aec console script not installed in this environment")
    result = subprocess.run([script, "pack", example_digits, "-o", tmp_path / "d.aec", "-q"], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_unpack_and_info_never_import_tensorflow(tmp_path, example_digits):
    archive = tmp_path / "d.aec"
    assert run_aec("pack", example_digits, "-o", archive, "-q").returncode == 0
    probe = (
        "import sys\n"
        "from aec.cli.main import app\n"
        "for argv in (['unpack', sys.argv[1], '-o', sys.argv[2], '-q'], ['info', sys.argv[1]]):\n"
        "    try:\n"
        "        app(argv, prog_name='aec')\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "print('TF-LOADED' if any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules) else 'NO-TF')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, archive, tmp_path / "out"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-TF")


def test_quality_levels(tmp_path, example_digits):
    from aec.models import quality_levels

    levels = quality_levels()
    assert levels and all(codec_name.startswith("mnist-q") for codec_name in levels.values())
    sizes = []
    for level in sorted(levels):
        out = tmp_path / f"q{level}.aec"
        assert invoke("pack", example_digits, "-o", out, "-Q", level, "-q").exit_code == 0
        assert json.loads(invoke("info", out, "--json").stdout)["quality"] == level
        sizes.append(out.stat().st_size)
    assert sizes == sorted(sizes)  # a higher level never has fewer bytes
    result = invoke("pack", example_digits, "-o", tmp_path / "x.aec", "-Q", 99)
    assert result.exit_code == 1 and "quality 99 is not shipped" in result.stderr
    result = invoke("pack", example_digits, "-o", tmp_path / "x.aec", "-Q", 3, "--model", "mnist-q3")
    assert result.exit_code == 1 and "not both" in result.stderr


@pytest.mark.parametrize("quality", [1, 3, 5])
def test_one_file_unpacks_to_byte_identical_pngs_in_fresh_processes(tmp_path, example_digits, quality):
    """The same .aec gives the same PNG bytes in two new processes, and the same as in this one."""
    packed = tmp_path / "d.aec"
    assert run_aec("pack", example_digits, "-o", packed, "-Q", quality, "-q").returncode == 0
    outputs = []
    for name in ("one", "two"):
        result = run_aec("unpack", packed, "-o", tmp_path / name, "-q")
        assert result.returncode == 0, result.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert len(outputs[0]) == 48 and outputs[0] == outputs[1]
    import aec

    aec.unpack(packed, tmp_path / "here")
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "here").iterdir())} == outputs[0]


def test_usage_errors_are_one_line_with_a_hint(tmp_path, example_digits):
    for args, message in (
        (("pack", example_digits), "Missing option '--output' / '-o'. (see 'aec pack -h')"),
        (("frobnicate",), "No such command 'frobnicate'. (see 'aec -h')"),
        (("lst",), "No such command 'lst'. Did you mean 'list'? (see 'aec -h')"),  # one hint, not two
        (("pack", example_digits, "--invert", "sometimes", "-o", tmp_path / "x.aec"), "'--invert'"),
    ):
        done = run_aec(*args)
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("aec: ") and message in lines[0], lines


def test_an_empty_output_path_is_refused(tmp_path, example_digits):
    packed = tmp_path / "d.aec"
    assert invoke("pack", example_digits, "-o", packed, "-q").exit_code == 0
    for args in (("pack", example_digits, "-o", ""), ("unpack", packed, "-o", ""), ("cat", packed, "-o", " ")):
        done = run_aec(*args, cwd=tmp_path)
        assert done.returncode == 2 and "not an empty string" in done.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.aec"]


def test_an_endless_stdin_that_is_no_aec_file_is_refused_at_once():
    for args in (("info", "-"), ("unpack", "--test", "-"), ("list", "-")):
        with open("/dev/zero", "rb") as zero:
            done = subprocess.run(AEC + list(args), stdin=zero, capture_output=True, timeout=60)
        assert done.returncode == 1 and b"stdin: not an .aec file (bad signature)" in done.stderr


def test_names_in_messages_are_escaped_so_one_message_is_one_line(tmp_path, example_digits):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad\x1b[31mred\nline.png").write_bytes((example_digits / "00000_7.png").read_bytes())
    done = run_aec("pack", folder, "-o", tmp_path / "x.aec")
    err = done.stderr.decode()
    assert done.returncode == 1 and "\x1b" not in err and err.count("\n") == 1
    assert "bad\\x1b[31mred\\nline.png" in err and "cannot be stored" in err


def test_progress_bar_appears_only_for_jobs_longer_than_a_second_and_counts_from_the_start(monkeypatch):
    import contextlib

    from aec.cli import app as cli_app

    with contextlib.ExitStack() as stack:
        quick = cli_app._LateProgress("packing", stack)
        quick.on_start(10)
        quick.advance(4)
        assert quick.bar is None and quick.done == 4  # under a second: nothing drawn, rich not needed
        monkeypatch.setattr(cli_app, "SHOW_PROGRESS_AFTER_SECONDS", 0.0)
        quick.advance(3)
        assert quick.bar is not None
        task = quick.bar.tasks[0]
        assert (task.completed, task.total) == (7, 10)
        quick.advance(3)
        assert quick.bar.tasks[0].completed == 10
