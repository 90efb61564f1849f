"""`aec train`: tiny runs on the 300-digit fixture (seconds each on a 2-core CPU).

What each test proves is in its docstring. The two-worker run is in
test_distributed.py, fetch-mnist in test_fetch.py.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import aec
from aec.cli.main import app

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mnist-train-300.npz"
AEC = [sys.executable, "-m", "aec"]
# A small network and batch: about 20 ms per epoch on the fixture.
TINY = ["--hidden", "32", "--batch-size", "25", "--lambda", "5000"]

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    # An uncaught exception exits 1 with nothing on stderr: make it visible.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_tiny_model_file_is_complete(tiny_model_file):
    """The exported file carries the entropy tables, figures, data source, history and package versions."""
    model = aec.resolve_model(tiny_model_file)
    assert model.name == "tiny" and model.latents == 32
    training = model.metadata["training"]
    assert training["images"] + training["val_images"] == 300
    assert {"tensorflow", "keras", "numpy", "h5py", "python"} <= set(model.metadata["versions"])
    assert len(training["history"]["val_loss"]) == training["epochs_run"] == 10
    assert 1 <= training["best_epoch"] <= 10 and training["strategy"] == "default"
    assert len(training["data_sha256"]) == 64 and training["command"]
    # It learned something: an all-black guess scores about 10 dB on MNIST.
    assert model.metadata["validation"]["psnr_db"] > 11
    assert model.table_counts.shape[0] == 32 and np.all(model.table_counts[:, -1] > 0)


def test_tiny_model_packs_and_unpacks_through_cli(tmp_path, tiny_model_file, example_digits):
    """A trained model file is usable by pack/unpack --model; unpack without it refuses."""
    out = tmp_path / "t.aec"
    result = invoke("pack", example_digits, "-o", out, "--model", tiny_model_file)
    assert result.exit_code == 0, result.output
    # The tiny model is not shipped: unpack must be told, and then works.
    result = invoke("unpack", out, "-o", tmp_path / "a")
    assert result.exit_code == 1 and "not shipped" in result.stderr
    result = invoke("unpack", out, "-o", tmp_path / "b", "--model", tiny_model_file)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "b").glob("*.png"))) == 48


def test_train_cli_end_to_end(tmp_path, example_digits):
    """`aec train` prints per-epoch progress and the final figures, records the command, and
    its model packs and unpacks; an existing --out is protected."""
    out = tmp_path / "m.h5"
    result = invoke(
        "train", "--data", FIXTURE, *TINY, "--epochs", "3", "--name", "mine", "--quality", "2", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1/3" in result.stderr and "epoch 3/3" in result.stderr
    assert "coded bytes/image" in result.stderr and "PSNR" in result.stderr
    model = aec.resolve_model(out)
    training = model.metadata["training"]
    assert (model.name, model.quality) == ("mine", 2)
    assert training["data"] == str(FIXTURE) and training["data_kind"] == "npz"
    assert "--epochs 3" in training["command"]
    figures = model.metadata["validation"]
    assert figures["images"] == 25 and figures["latent_bytes_per_image"] > 0 and figures["psnr_db"] > 9
    assert not (tmp_path / "m.h5.ckpt").exists()  # removed once the model file is written
    packed = tmp_path / "d.aec"
    assert invoke("pack", example_digits, "-o", packed, "--model", out).exit_code == 0
    assert invoke("unpack", packed, "-o", tmp_path / "d", "--model", out).exit_code == 0
    result = invoke("train", "--data", FIXTURE, *TINY, "--out", out)
    assert result.exit_code == 1 and "--force" in result.stderr


def test_same_seed_same_model(tmp_path):
    """Reproducible: the same seed and data give bit-identical weights and identical figures
    (tolerance: exact; TensorFlow's op determinism is on); another seed gives another model."""
    from aec.training.loop import TrainConfig
    from aec.training.model import Architecture
    from aec.training.run import train_and_export

    with np.load(FIXTURE) as npz:
        images = npz["images"]
    runs = []
    for i, seed in enumerate([7, 7, 8]):
        runs.append(
            train_and_export(
                tmp_path / f"{i}.h5",
                images=images,
                arch=Architecture(hidden=[32]),
                config=TrainConfig(epochs=3, batch_size=25, lmbda=5000, seed=seed),
                log=lambda line: None,
            )
        )
    assert runs[0].weights_sha256 == runs[1].weights_sha256
    assert runs[0].figures == runs[1].figures
    assert runs[0].model.table_counts.tobytes() == runs[1].model.table_counts.tobytes()
    assert [r.val_loss for r in runs[0].result.history] == [r.val_loss for r in runs[1].result.history]
    assert runs[2].weights_sha256 != runs[0].weights_sha256


def test_augmented_training_is_reproducible_and_sees_redrawn_digits(tmp_path):
    """--augment: the same seed gives the same weights (the copies come from the seed), and the
    training differs from a run on the digits as they are."""
    from aec.training.loop import TrainConfig
    from aec.training.model import Architecture
    from aec.training.run import train_and_export

    with np.load(FIXTURE) as npz:
        images = npz["images"]
    runs = [
        train_and_export(
            tmp_path / f"{i}.h5",
            images=images,
            arch=Architecture(hidden=[32]),
            config=TrainConfig(epochs=2, batch_size=25, lmbda=5000, seed=7, augment=share),
            log=lambda line: None,
        )
        for i, share in enumerate([0.5, 0.5, 0.0])
    ]
    assert runs[0].weights_sha256 == runs[1].weights_sha256
    assert runs[2].weights_sha256 != runs[0].weights_sha256
    assert runs[0].model.metadata["training"]["augment"] == 0.5


def _checkpoint_epoch(ckpt_dir: Path) -> int:
    state = (ckpt_dir / "checkpoint").read_text()
    return int(state.split('model_checkpoint_path: "ckpt-')[1].split('"')[0])


@pytest.mark.slow
def test_resume_after_kill_continues_and_matches_uninterrupted_run(tmp_path):
    """A run killed (SIGKILL) after a checkpoint resumes from that epoch with --resume, finishes
    all epochs, and ends with exactly the weights of a run that was never interrupted. Without
    --resume, or with other settings, the leftover checkpoint is refused in one line."""
    args = ["train", "--data", FIXTURE, *TINY, "--epochs", "40", "--patience", "0", "--seed", "3"]
    out = tmp_path / "r.h5"
    ckpt = tmp_path / "r.h5.ckpt"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.Popen(
        AEC + [str(a) for a in args] + ["--out", str(out), "-q"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (ckpt / "checkpoint").exists():
            assert proc.poll() is None, f"training ended before its first checkpoint: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists()
    done = _checkpoint_epoch(ckpt)
    assert 1 <= done < 40

    result = invoke(*args, "--out", out)
    assert result.exit_code == 1 and "--resume" in result.stderr and len(result.stderr.splitlines()) == 1
    result = invoke(*args[:-2], "--seed", "4", "--resume", "--out", out)
    assert result.exit_code == 1 and "different config" in result.stderr, result.stderr

    result = invoke(*args, "--resume", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"resumed after epoch {done}" in result.stderr
    epochs = [int(line.split()[1].split("/")[0]) for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert epochs == list(range(done + 1, 41))
    resumed = aec.resolve_model(out).metadata["training"]
    assert resumed["resumed_from_epoch"] == done and resumed["epochs_run"] == 40
    assert len(resumed["history"]["val_loss"]) == 40
    assert not ckpt.exists()

    reference = tmp_path / "ref.h5"
    assert invoke(*args, "--out", reference).exit_code == 0
    straight = aec.resolve_model(reference).metadata["training"]
    assert straight["weights_sha256"] == resumed["weights_sha256"]
    assert straight["history"]["val_loss"] == resumed["history"]["val_loss"]


def test_second_run_on_the_same_checkpoints_is_refused(tmp_path):
    """While one run holds OUT.ckpt/ (an flock on OUT.ckpt/lock), another run on the same --out
    fails at once in one line; a run that fails before its first checkpoint leaves no OUT.ckpt/."""
    import fcntl

    ckpt = tmp_path / "busy.h5.ckpt"
    ckpt.mkdir()
    with open(ckpt / "lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = invoke("train", "--data", FIXTURE, *TINY, "--epochs", "1", "--out", tmp_path / "busy.h5")
    assert result.exit_code == 1 and "another `aec train`" in result.stderr
    assert len(result.stderr.splitlines()) == 1

    result = invoke("train", "--data", FIXTURE, *TINY[:-4], "--batch-size", "5000", "--out", tmp_path / "big.h5")
    assert result.exit_code == 1 and "fewer than one batch" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.h5.ckpt"]


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    """--resume with nothing to resume trains from epoch 1 (so a preempted job can always be rerun as is)."""
    result = invoke("train", "--data", FIXTURE, *TINY, "--epochs", "2", "--resume", "--out", tmp_path / "f.h5")
    assert result.exit_code == 0, result.output
    assert "starting at epoch 1" in result.stderr and "epoch 2/2" in result.stderr


def test_train_from_png_folder(tmp_path):
    """A folder of the user's PNGs (any mode Pillow reads, hidden files skipped) trains a model;
    a file that is not a 28x28 image fails the run in one line naming it, as in `aec pack`."""
    with np.load(FIXTURE) as npz:
        images = npz["images"][:120]
    folder = tmp_path / "digits"
    (folder / "sub").mkdir(parents=True)
    for i, image in enumerate(images):
        target = folder / ("sub" if i % 2 else ".") / f"{i:03d}.png"
        if i % 10 == 0:  # colour images are converted to grayscale, as pack does
            Image.fromarray(np.stack([image] * 3, -1), "RGB").save(target)
        else:
            Image.fromarray(image, "L").save(target)
    (folder / ".DS_Store").write_bytes(b"junk")
    out = tmp_path / "png.h5"
    result = invoke("train", "--data", folder, *TINY, "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    training = aec.resolve_model(out).metadata["training"]
    assert training["data_kind"] == "images" and training["data"] == str(folder)
    assert training["images"] + training["val_images"] == 120

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "big.png")
    result = invoke("train", "--data", folder, *TINY, "--epochs", "1", "--out", tmp_path / "x.h5")
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert "big.png" in result.stderr and "28x28" in result.stderr
    assert not (tmp_path / "x.h5").exists()


def test_early_stopping_restores_best_weights(train_fixture):
    """With a learning rate that makes the loss bounce, training stops `patience` epochs after
    the best one, and the weights returned are the best epoch's, not the last's."""
    from aec.training.loop import TrainConfig, evaluate, train
    from aec.training.model import Architecture

    x_val, x_train = train_fixture[:50], train_fixture[50:]
    config = TrainConfig(epochs=40, batch_size=25, lmbda=5000, learning_rate=0.05, patience=2)
    result = train(x_train, x_val, Architecture(hidden=[32]), config)
    assert result.stopped_early
    last = result.history[-1].epoch
    assert last < 40 and last - result.best_epoch == 2
    best = result.history[result.best_epoch - 1]
    assert best.best and best.val_loss == min(r.val_loss for r in result.history)
    bits, mse = evaluate(result.codec, x_val)
    assert bits + config.lmbda * mse == pytest.approx(best.val_loss, rel=1e-4)


def test_strategy_choice():
    """TF_CONFIG with a cluster -> MultiWorkerMirroredStrategy; several GPUs -> MirroredStrategy; else default."""
    from aec.training.strategy import strategy_kind

    cluster = json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    )
    assert strategy_kind(cluster, 0) == "multi-worker"
    assert strategy_kind("", 4) == "mirrored"
    assert strategy_kind("", 1) == "default" and strategy_kind(None, 0) == "default"


def test_which_worker_writes():
    """TensorFlow's convention, read from TF_CONFIG without TensorFlow: the chief task, else worker 0;
    a malformed TF_CONFIG is a one-line error."""
    from aec.errors import AecError
    from aec.training.cluster import task_from_tf_config

    def task(cluster, kind, index):
        return task_from_tf_config(json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))

    workers = {"worker": ["a:1", "b:1"]}
    assert task(workers, "worker", 0).is_chief and not task(workers, "worker", 1).is_chief
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert task(with_chief, "chief", 0).is_chief and not task(with_chief, "worker", 0).is_chief
    assert task(with_chief, "worker", 1).index == 2 and task(with_chief, "worker", 1).workers == 3
    assert task_from_tf_config("").is_chief and task_from_tf_config("").workers == 1
    for bad in [
        "{not json",
        json.dumps({"cluster": workers, "task": {"type": "ps", "index": 0}}),
        json.dumps({"cluster": workers, "task": {"type": "worker", "index": 5}}),
    ]:
        with pytest.raises(AecError, match="TF_CONFIG"):
            task_from_tf_config(bad)


MIRRORED_SCRIPT = """
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
from aec.training.loop import TrainConfig, train
from aec.training.model import Architecture
with np.load(sys.argv[1]) as npz:
    x = npz["images"]
result = train(x[50:], x[:50], Architecture(hidden=[32]), TrainConfig(epochs=3, batch_size=24, lmbda=5000),
               strategy=strategy)
losses = [r.val_loss for r in result.history]
assert result.strategy == "mirrored" and result.replicas == 2, result
assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
print("OK", losses)
"""


@pytest.mark.slow
def test_same_step_runs_under_mirrored_strategy():
    """The one training step also runs under MirroredStrategy with two replicas (two logical
    CPUs stand in for two GPUs), and learns."""
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(FIXTURE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="-1"),
        timeout=300,
    )
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


@pytest.mark.slow
def test_train_command_on_mnist(tmp_path, mnist_dir):
    """On real MNIST (from --data): data source recorded, epochs as asked."""
    out = tmp_path / "m.h5"
    result = invoke(
        "train", "--data", mnist_dir, "--epochs", "1", "--limit", "600", "--hidden", "64", "--out", out, "-q"
    )
    assert result.exit_code == 0, result.output
    assert "PSNR" in result.stderr
    model = aec.resolve_model(out)
    assert model.metadata["training"]["data"] == str(mnist_dir)
    assert model.metadata["training"]["data_kind"] == "mnist"
    assert model.metadata["training"]["epochs"] == 1
