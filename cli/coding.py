"""The commands that code images: pack, unpack, info, bench (files.py: list, cat, show)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

import aec
from aec.guarantee import rescue_warning
from aec.levels import DEFAULT_LEVEL, LEVELS
from aec.prepare import Invert
from aec.unpacking import OutputFormat

from .app import Debug, Force, ModelOpt, Quiet, command, no_empty_path, print_error, progress_bar


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
            help=f"Quality level {min(LEVELS)}-{max(LEVELS)} (see aec bench; higher: better and larger; "
            f"levels 4 and 5 hold every image to their floor: {LEVELS[4].floor:g} and {LEVELS[5].floor:g} dB). "
            f"Default: {DEFAULT_LEVEL}.",
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
            help="0: the encoder's latents, those of the worst-coded images searched briefly (fastest). "
            "1: search every image for latents the decoder turns into better "
            "pictures for no more bytes (about 0.8 ms per image per core). "
            "2: a longer search, better still (about 3 ms per image per core). Figures: aec bench.",
        ),
    ] = 0,
    cluster: Annotated[
        Optional[str],
        typer.Option(
            "--cluster",
            metavar="ADDRESS",
            help="A Dask scheduler (tcp://host:8786) whose workers read and encode the inputs; they must see "
            "the same paths. The file is the same. Needs pip install 'aec-codec\\[cluster]'.",
        ),
    ] = None,
    min_psnr: Annotated[
        Optional[float],
        typer.Option(
            "--min-psnr",
            metavar="DB",
            min=0,
            help="Quality floor: an image that would come back below DB dB PSNR is rescued (coded with a "
            "residual that meets it). 0: no floor. Default: the level's floor "
            f"({', '.join(f'-Q {q}: {entry.floor:g}' for q, entry in LEVELS.items())}).",
            show_default=False,
        ),
    ] = None,
    max_error: Annotated[
        Optional[int],
        typer.Option(
            "--max-error",
            metavar="N",
            min=0,
            max=255,
            help="Near-lossless: every pixel comes back within N of its input (a residual after the latents). "
            "Uses level 1 unless -Q or --model is given.",
            show_default=False,
        ),
    ] = None,
    lossless: Annotated[
        bool, typer.Option("--lossless", help="Every pixel back exactly (--max-error 0), whatever the image shows.")
    ] = False,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Pack image files and folders into one .aec file."""
    if lossless:
        if max_error not in (None, 0):
            raise aec.InputError(f"--lossless and --max-error {max_error} disagree: give one")
        max_error = 0
    no_empty_path(output)
    if output == "-":
        if sys.stdout.isatty():
            raise aec.OutputError("refusing to write binary data to a terminal (use -o FILE or a pipe)")
        target = sys.stdout.buffer
    else:
        target = Path(output)
    with progress_bar("packing", quiet) as (on_start, advance):
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
            cluster=cluster,
            min_psnr=min_psnr,
            max_error=max_error,
        )
    if output == "-":
        sys.stdout.buffer.flush()
    for path, reason in result.skipped:
        print_error(f"skipped {path}: {reason}")  # always shown: nothing is skipped silently
    warning = rescue_warning(result.rescued, result.images, result.min_psnr, result.model_floor)
    if warning:
        print_error(warning)
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
            (result.rescued, f"rescued to the {result.min_psnr:g} dB floor ({result.residual_bytes:,} bytes)"),
            (len(result.skipped), "invalid skipped"),
            (len(result.hidden_skipped), "hidden skipped"),
            (len(result.linked_folders_skipped), "linked folders not walked"),
        ):
            if count:
                line += f"; {count} {what}"
        if result.max_error is not None:
            line += "; lossless" if result.max_error == 0 else f"; every pixel within {result.max_error}"
        print(line, file=sys.stderr)


@command()
def unpack(
    input: Annotated[str, typer.Argument(metavar="IN.aec", help="The .aec file, or - for stdin.")],
    members: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[NAME|GLOB]...",
            help="Only these stored names (or the .png names they unpack to); globs like 'train/7/*' "
            "(quote them). Only the chunks that hold them are decoded. Default: every image.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="DIR", help="Output folder (default: IN without .aec).")
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
    cluster: Annotated[
        Optional[str],
        typer.Option(
            "--cluster",
            metavar="ADDRESS",
            help="A Dask scheduler (tcp://host:8786) whose workers decode the chunks; this process reads the "
            "file and writes the outputs, the same as without it. Needs pip install 'aec-codec\\[cluster]'.",
        ),
    ] = None,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Unpack an .aec file (or the members named) into PNG files with the stored relative names."""
    no_empty_path(output)
    if test:
        report = aec.verify(sys.stdin.buffer if input == "-" else input, model=model, cluster=cluster)
        if not quiet:
            print(f"{report['file']}: OK, {report['images']} images (model {report['model']})", file=sys.stderr)
        return
    if output is None:
        if input == "-" or not input.endswith(".aec"):
            raise typer.BadParameter("give the output with -o", param_hint="'--output'")
        output = Path(input[: -len(".aec")] + ("" if format == OutputFormat.PNG else f".{format.value}"))
    source = sys.stdin.buffer if input == "-" else input
    with progress_bar("unpacking", quiet) as (on_start, advance):
        result = aec.unpack(
            source,
            output,
            model=model,
            force=force,
            restore_size=restore_size,
            format=format,
            progress=advance,
            on_start=on_start,
            members=members or None,
            cluster=cluster,
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
        f"format:       {facts['format_version']}"
        f"{', with a checksum of the decoded pixels of each chunk' if facts['pixel_checksums'] else ''}"
        f"{' and of each block' if facts['block_checksums'] else ''}\n"
        f"images:       {facts['images']} ({facts['image_size'][0]}x{facts['image_size'][1]}, {facts['latents']} latents)\n"
        f"model:        {model} (fingerprint {facts['model_fingerprint'][:16]})\n"
        f"quality:      {facts['quality']}\n"
        f"size:         {total:,} bytes, {facts['bytes_per_image']:.2f} bytes per image\n"
        f"  header:     {share(facts['header_bytes'])}\n"
        f"  names:      {share(facts['names_bytes'])}\n"
        f"  payload:    {share(facts['payload_bytes'])} in {facts['chunks']} chunks, "
        f"of which coded latents {facts['latent_bytes'] - facts['residual_bytes']:,} bytes"
        + (f", residuals {facts['residual_bytes']:,} bytes" if facts["residual_bytes"] else "")
    )
    changed = [
        f"{facts[f'images_{what}']} {what}"
        for what in ("converted", "inverted", "resized", "rescued")
        if facts[f"images_{what}"]
    ]
    print(f"labels:       {'yes' if facts['labels'] else 'no'}\nchanged:      {', '.join(changed) or 'none'}")
    if facts["images_with_residual"]:
        errors = facts["max_errors"]
        bound = "lossless" if errors == [0] else f"every pixel within {', '.join(map(str, errors))} of its input"
        print(f"residual:     {facts['images_with_residual']} images ({bound})")


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
    from aec import bench as benchmark  # here: the classic codecs cost every other command 14 ms at start-up

    result = benchmark.run(path, limit=limit, efforts=tuple(dict.fromkeys(effort or [0, 1])))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(benchmark.format_table(result))
