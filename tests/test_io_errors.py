"""Write failures (disk full, file too large) are one line, exit 1, and leave the target as it was.

A full disk is simulated with RLIMIT_FSIZE: writes past the limit fail with
EFBIG, as they would with ENOSPC, in a real aec process.
"""

import resource
import signal
import subprocess
import sys

import aec

AEC = [sys.executable, "-m", "aec"]


def limited(max_file_bytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return apply


def test_pack_write_failure(tmp_path, example_digits):
    out = tmp_path / "d.aec"
    done = subprocess.run(
        AEC + ["pack", str(example_digits), "-o", str(out)], capture_output=True, text=True, preexec_fn=limited(300)
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and str(out) in done.stderr
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def test_unpack_write_failure_rolls_back(tmp_path, example_digits):
    archive = tmp_path / "d.aec"
    aec.pack([example_digits], archive)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    # PNGs of these digits are 150-400 bytes: some fit under the limit, some do not.
    done = subprocess.run(
        AEC + ["unpack", str(archive), "-o", str(dest / "nested")],
        capture_output=True,
        text=True,
        preexec_fn=limited(250),
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "cannot write" in done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]  # as it was
