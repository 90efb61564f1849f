"""`aec train` end to end: load data, fit (checkpointed, resumable, distributed), export, report.

Files: the model file OUT (written by the chief only, atomically) and its
checkpoint folder OUT.ckpt/ (one checkpoint, replaced after every epoch;
removed once OUT is written). Non-chief workers of a multi-worker run write
their checkpoints to a private temporary folder and no model file.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .. import runtime
from .._version import __version__
from ..datasets import TrainingData, load_training_images
from ..entropy import LatentCoder
from ..errors import OutputError
from ..metrics import psnr
from ..modelfile import Model, write_model
from .cluster import SINGLE, Task, task_from_tf_config
from .export import export_model
from .loop import EpochReport, TrainConfig, TrainResult, train, weights_digest
from .model import Architecture
from .strategy import make_strategy


@dataclass
class Outcome:
    model: Model | None  # None on non-chief workers, which write no model file
    figures: dict | None  # measure() of the model on the validation images
    result: TrainResult
    weights_sha256: str  # equal on every worker of a distributed run
    task: Task = SINGLE


def measure(model: Model, images: np.ndarray) -> dict:
    """Real figures with the real coder: coded-latent bytes per image, MSE on [0,1], PSNR."""
    coder = LatentCoder(model)
    coded, sq = 0, 0.0
    for i in range(0, len(images), 4096):
        part = images[i : i + 4096]
        q = runtime.encode_latents(model, part)
        coded += len(coder.encode(q))
        recon = runtime.decode_latents(model, q)
        # summed chunk by chunk, so the decoded set is never whole in memory: metrics.mse, up to rounding
        sq += float(np.sum((recon.astype(np.float64) - part) ** 2)) / 255**2
    mse = sq / images.size
    return {"images": len(images), "latent_bytes_per_image": coded / len(images), "mse": mse, "psnr_db": psnr(mse)}


def _versions() -> dict:
    import h5py

    from . import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

    # isort: split
    import keras
    import tensorflow as tf

    return {
        "aec": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "h5py": h5py.__version__,
    }


def checkpoint_dir_for(out: str | os.PathLike) -> Path:
    """OUT.ckpt, beside the model file."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def split_validation(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation indices, training indices): a fixed permutation from the seed decides."""
    n_val = max(1, int(round(n * val_fraction)))
    order = np.random.default_rng(seed).permutation(n)
    return order[:n_val], order[n_val:]


def train_and_export(
    out: Path,
    data: str | os.PathLike | TrainingData | None = None,
    images: np.ndarray | None = None,
    name: str = "mnist-custom",
    quality: int = 3,
    arch: Architecture | None = None,
    config: TrainConfig | None = None,
    val_fraction: float = 1 / 12,
    limit: int | None = None,
    log: Callable[[str], None] = print,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    command: str | None = None,
    invert: str = "auto",
    resize: bool = False,
) -> Outcome:
    """Train on `data` (a path for datasets.load_training_images, or what it returned) or on
    `images`, and write the model file `out`.

    resume: continue from OUT.ckpt if it holds a checkpoint (else start
    fresh). Without it an existing OUT.ckpt is an error, unless `force`,
    which also allows overwriting `out`. invert/resize: how image files are
    prepared, as for `aec pack` (arrays and IDX files are used as they are).
    """
    arch, config = arch or Architecture(), config or TrainConfig()
    out = Path(out)
    # The strategy comes first: MultiWorkerMirroredStrategy must be created
    # before TensorFlow does anything else.
    strategy, kind = make_strategy()
    start = time.perf_counter()
    if isinstance(data, TrainingData):
        loaded = data
    elif images is None:
        loaded = load_training_images(data, tuple(arch.image_shape), invert=invert, resize=resize)
    else:
        loaded = TrainingData(np.asarray(images), f"array of {len(images)} images", "array")
    source = loaded.source
    all_images = loaded.images[:limit] if limit else loaded.images
    val_idx, train_idx = split_validation(len(all_images), val_fraction, config.seed)
    x_val, x_train = all_images[val_idx], all_images[train_idx]

    task = task_from_tf_config() if kind == "multi-worker" else SINGLE
    ckpt_dir = checkpoint_dir_for(out)
    scratch = lock = None
    if task.is_chief:
        if (out.exists() or out.is_symlink()) and not force:
            raise OutputError(f"{out}: already exists (use --force to overwrite)")
        lock = _lock_checkpoints(ckpt_dir)
        if (ckpt_dir / "checkpoint").exists() and not resume:
            if not force:
                lock.close()
                raise OutputError(
                    f"{ckpt_dir}: an unfinished run's checkpoint is there; "
                    "add --resume to continue it, or --force to start over"
                )
            for item in ckpt_dir.iterdir():
                if item.name != LOCK_NAME:
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        write_dir = ckpt_dir
    else:
        # TensorFlow's advice: every worker saves (saving may involve
        # collectives), but only the chief's copy is kept.
        scratch = Path(tempfile.mkdtemp(prefix=f"aec-worker{task.index}-"))
        write_dir = scratch

    identity = {
        "architecture": arch.to_dict(),
        "config": asdict(config),
        "data_sha256": loaded.sha256 if limit is None else f"{loaded.sha256}[:{limit}]",
        "val_fraction": val_fraction,
    }
    where = f"worker {task.index} of {task.workers}{' (chief)' if task.is_chief else ''}, " if task.workers > 1 else ""
    log(
        f"{where}training on {len(x_train)} images from {source}, validating on {len(x_val)} "
        f"({kind} strategy, {strategy.num_replicas_in_sync} replica(s))"
    )

    def on_epoch(r: EpochReport) -> None:
        log(
            f"epoch {r.epoch}/{config.epochs}: loss {r.loss:.2f}, train {r.train_bits / 8:.2f} B/img, "
            f"val {r.val_bits / 8:.2f} B/img (estimate) at {r.val_psnr:.2f} dB, val loss {r.val_loss:.2f}"
            f"{' *' if r.best else ''}, {r.seconds:.1f}s"
        )

    try:
        result = train(
            x_train,
            x_val,
            arch,
            config,
            strategy=strategy,
            on_epoch=on_epoch,
            checkpoint_dir=ckpt_dir,
            checkpoint_write_dir=write_dir,
            resume=resume,
            identity=identity,
            progress=progress,
            log=log,
        )
        return _finish(
            result,
            task,
            out,
            force,
            ckpt_dir,
            loaded,
            config,
            arch,
            name,
            quality,
            x_train,
            x_val,
            val_fraction,
            limit,
            command,
            start,
            log,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if lock is not None:
            lock.close()  # releases the lock (the file itself went with OUT.ckpt if the run finished)
            _remove_if_only_lock(ckpt_dir)


def _finish(
    result: TrainResult,
    task: Task,
    out: Path,
    force: bool,
    ckpt_dir: Path,
    loaded: TrainingData,
    config: TrainConfig,
    arch: Architecture,
    name: str,
    quality: int,
    x_train: np.ndarray,
    x_val: np.ndarray,
    val_fraction: float,
    limit: int | None,
    command: str | None,
    start: float,
    log: Callable[[str], None],
) -> Outcome:
    """Report, export (chief) and clean up after training."""
    if result.resumed_from:
        log(f"resumed after epoch {result.resumed_from} from {ckpt_dir}")
    last = result.history[-1].epoch if result.history else 0
    log(
        f"best validation loss at epoch {result.best_epoch} of {last}"
        f"{f' (stopped early: no improvement for {config.patience} epochs)' if result.stopped_early else ''}; "
        "exporting its weights"
    )
    digest = weights_digest(result.codec)
    seconds = time.perf_counter() - start
    if not task.is_chief:
        log(f"worker {task.index}: done, weights sha256 {digest} (the chief writes the model file)")
        return Outcome(None, None, result, digest, task)

    metadata = {
        "architecture": arch.to_dict(),
        "training": {
            **asdict(config),
            "images": len(x_train),
            "val_images": len(x_val),
            "val_fraction": val_fraction,
            "data": loaded.source,
            "data_kind": loaded.kind,
            "data_sha256": loaded.sha256,
            "limit": limit,
            "split": "train" if loaded.kind.startswith("mnist") else "all",
            "seconds": round(seconds, 1),
            "command": command or _command_line(),
            "strategy": result.strategy,
            "replicas": result.replicas,
            "workers": task.workers,
            "epochs_run": last,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "resumed_from_epoch": result.resumed_from,
            "history": {
                f: [round(getattr(r, f), 6) for r in result.history]
                for f in ("loss", "val_bits", "val_mse", "val_loss", "seconds")
            },
            "weights_sha256": digest,
        },
        "versions": _versions(),
    }
    model = export_model(result.codec, x_train, name=name, quality=quality, metadata=metadata)
    figures = measure(model, x_val)
    model.metadata["validation"] = figures
    model = replace(model, fingerprint=b"")  # the fingerprint covers the figures too
    if (out.exists() or out.is_symlink()) and not force:  # appeared while we trained
        raise OutputError(f"{out}: already exists (use --force to overwrite); the checkpoint in {ckpt_dir} is kept")
    write_model(model, out)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the run is complete: nothing left to resume
    return Outcome(model, figures, result, digest, task)


LOCK_NAME = "lock"


def _remove_if_only_lock(ckpt_dir: Path) -> None:
    """A run that failed before its first checkpoint leaves nothing to resume: no empty OUT.ckpt/."""
    try:
        if [p.name for p in ckpt_dir.iterdir()] == [LOCK_NAME]:
            shutil.rmtree(ckpt_dir)
    except OSError:
        pass


def _lock_checkpoints(ckpt_dir: Path):
    """Hold an exclusive lock on OUT.ckpt/lock for the run: two runs must not share checkpoints.

    flock() locks die with their process, so a killed run never leaves a stale lock.
    """
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        handle = open(ckpt_dir / LOCK_NAME, "a+")
    except OSError as err:
        raise OutputError(f"{ckpt_dir}: cannot create the checkpoint folder ({err.strerror or err})") from None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise OutputError(
            f"{ckpt_dir}: another `aec train` is writing these checkpoints (wait for it, or choose another --out)"
        ) from None
    return handle


def _command_line() -> str:
    argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
    return shlex.join(argv)
