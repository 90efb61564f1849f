"""Scale-out: `aec train` as two MultiWorkerMirroredStrategy workers on 127.0.0.1 (CPU only)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import aec
from aec.cli.main import app

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mnist-train-300.npz"


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is chosen, so no two are the same.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(per_worker_args: list[list[str]], timeout: float = 240) -> list[tuple[int, str]]:
    """Start one `aec train` per argument list as the workers of a cluster on 127.0.0.1; (exit code, stderr) each."""
    ports = _free_ports(len(per_worker_args))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index, args in enumerate(per_worker_args):
        env = dict(
            os.environ,
            CUDA_VISIBLE_DEVICES="-1",
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "aec", "train", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, err))
    finally:
        for proc in procs:  # a failed worker must not leave its peer waiting
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.slow
def test_two_workers_train_one_model(tmp_path, example_digits):
    """Two worker processes (TF_CONFIG, CUDA_VISIBLE_DEVICES=-1) run the same training step under
    MultiWorkerMirroredStrategy: both finish, their final weights are identical (SHA-256 of every
    weight), only the chief writes files, and its model file packs and unpacks."""
    out = tmp_path / "out" / "two.h5"
    out.parent.mkdir()
    args = [
        "--data",
        str(FIXTURE),
        "--hidden",
        "32",
        "--batch-size",
        "24",
        "--lambda",
        "5000",
        "--epochs",
        "3",
        "--out",
        str(out),
    ]
    results = _run_workers([args, args])
    for index, (code, err) in enumerate(results):
        assert code == 0, f"worker {index} failed: {err[-3000:]}"
        assert "multi-worker strategy, 2 replica(s)" in err and "epoch 3/3" in err
    logs = [err for _, err in results]

    # Worker 1 reports its weights' digest; the chief records its own in the model file.
    line = next(line for line in logs[1].splitlines() if line.startswith("worker 1: done"))
    worker_digest = line.split("weights sha256 ")[1].split()[0]
    model = aec.resolve_model(out)
    training = model.metadata["training"]
    assert training["strategy"] == "multi-worker" and training["workers"] == 2 and training["replicas"] == 2
    assert training["weights_sha256"] == worker_digest
    assert "wrote" in logs[0] and "wrote" not in logs[1]
    assert sorted(p.name for p in out.parent.iterdir()) == ["two.h5"]  # no checkpoints or scratch left

    runner = CliRunner()
    packed = tmp_path / "d.aec"
    result = runner.invoke(app, ["pack", str(example_digits), "-o", str(packed), "--model", str(out)])
    assert result.exception is None and result.exit_code == 0, result.output
    result = runner.invoke(app, ["unpack", str(packed), "-o", str(tmp_path / "d"), "--model", str(out)])
    assert result.exception is None and result.exit_code == 0, result.output
    assert len(list((tmp_path / "d").glob("*.png"))) == 48


@pytest.mark.slow
def test_workers_that_disagree_stop_with_one_line(tmp_path):
    """Workers given different options would train different models (or hang in an all-reduce):
    they find out before the first step and both exit 1 with one line; nothing is written."""
    out = tmp_path / "x.h5"
    base = ["--data", str(FIXTURE), "--hidden", "32", "--batch-size", "24", "--epochs", "2", "--out", str(out)]
    results = _run_workers([base + ["--lambda", "5000"], base + ["--lambda", "6000"]])
    for code, err in results:
        errors = [line for line in err.splitlines() if line.startswith("aec: ")]
        assert code == 1 and len(errors) == 1 and "workers disagree" in errors[0], err[-3000:]
    assert list(tmp_path.iterdir()) == []
