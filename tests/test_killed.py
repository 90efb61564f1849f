"""A killed pack or unpack leaves no partial file under a final name (benchmarks.robustness.kill_test: 50 of each)."""

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from aec.testing.killing import AEC, kill_pack_once, kill_unpack_once, make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory, example_images):
    # Big enough that pack is still busy when the kills land (pack's speed: benchmarks/RESULTS.md).
    return make_folder(tmp_path_factory.mktemp("kill") / "src", example_images, 12000)


@pytest.mark.slow
def test_killed_pack_leaves_no_partial_output(folder, tmp_path):
    rng = np.random.default_rng(7)
    outcomes = [kill_pack_once(folder, tmp_path / "out.aec", float(rng.uniform(0.3, 1.0))) for _ in range(6)]
    assert "killed" in outcomes  # the test did interrupt real work


@pytest.mark.slow
def test_killed_unpack_leaves_no_partial_png(folder, tmp_path):
    import aec

    archive = tmp_path / "a.aec"
    aec.pack([folder], archive)
    rng = np.random.default_rng(8)
    outcomes = []
    for _ in range(6):
        outcome, partial = kill_unpack_once(archive, tmp_path / "out", float(rng.uniform(0.4, 1.6)))
        assert partial == []
        outcomes.append(outcome)
    assert "killed" in outcomes


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(c) for c in task.read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("command", ["pack", "unpack"])
def test_killed_aec_leaves_no_worker_processes_behind(folder, tmp_path, command):
    import aec

    if command == "pack":
        args = ["pack", str(folder), "-o", str(tmp_path / "out.aec"), "-q"]
    else:
        aec.pack([folder], tmp_path / "a.aec")
        args = ["unpack", str(tmp_path / "a.aec"), "-o", str(tmp_path / "out"), "-q"]
    proc = subprocess.Popen(AEC + args)
    workers: set[int] = set()
    deadline = time.monotonic() + 10
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        time.sleep(0.01)
    assert workers, "the workers never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)]
