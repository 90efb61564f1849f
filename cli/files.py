"""The commands on .aec files as archives: list, cat, show."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

import aec
from aec.fileinfo import member_chunks
from aec.fileio import atomic_output
from aec.record import NO_LABEL, flag_words

from .app import Debug, Force, ModelOpt, Quiet, command, no_empty_path, printable


@command("list")
def list_(
    input: Annotated[str, typer.Argument(metavar="IN.aec", help="The .aec file, or - for stdin.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: name, label (or null), flags.")
    ] = False,
    debug: Debug = False,
) -> None:
    """List every stored name with its label and what pack did to it, in order, without decoding."""
    words = {flags: flag_words(flags) for flags in range(256)}
    plain = {flags: ",".join(w) or "-" for flags, w in words.items()}
    for names, labels, flags in member_chunks(sys.stdin.buffer if input == "-" else input):
        if as_json:
            lines = [
                json.dumps({"name": n, "label": None if b == NO_LABEL else b, "flags": words[f]})
                for n, b, f in zip(names, labels, flags)
            ]
        else:
            lines = [
                f"{printable(n)}\t{'-' if b == NO_LABEL else b}\t{plain[f]}" for n, b, f in zip(names, labels, flags)
            ]
        sys.stdout.write("\n".join(lines) + "\n")


@command()
def cat(
    inputs: Annotated[list[str], typer.Argument(metavar="IN.aec...", help="Files made with the same model, in order.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="OUT.aec", help="The joined file.")],
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Join .aec files made with the same model into one, without encoding again."""
    no_empty_path(output)
    result = aec.cat(inputs, output, force=force)
    if not quiet:
        how = "chunks copied" if result.copied_chunks else "chunks cut anew"
        print(
            f"joined {result.files} files, {result.images} images, into {output}: {result.total_bytes:,} bytes ({how})",
            file=sys.stderr,
        )


@command()
def show(
    input: Annotated[str, typer.Argument(metavar="IN.aec", help="The .aec file.")],
    members: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[NAME|GLOB]...", help="Which images (as for unpack). Default: the first ones.", show_default=False
        ),
    ] = None,
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            metavar="SHEET.png",
            help="Write the sheet here (default: open it in a viewer, or print where it went).",
        ),
    ] = None,
    compare: Annotated[
        Optional[Path],
        typer.Option(
            "--compare", metavar="DIR", help="The folder that was packed: show each original beside its decoded image."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many images.")] = 64,
    columns: Annotated[int, typer.Option(min=0, help="Images per row (0: about square).")] = 0,
    scale: Annotated[int, typer.Option(min=1, max=16, help="Enlarge each pixel this many times.")] = 3,
    model: ModelOpt = None,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Show decoded images as a contact sheet (with the originals beside them given --compare)."""
    from aec.sheet import contact_sheet, pick  # here: Pillow's drawing costs every other command's start-up

    no_empty_path(output)
    with aec.open(input, model=model) as data:
        image = contact_sheet(data, pick(data, members, limit), compare, columns, scale)
    if output is None and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"):
        image.show()
        return
    if output is None:
        handle, name = tempfile.mkstemp(prefix="aec-sheet-", suffix=".png")
        os.close(handle)
        output, force = Path(name), True
    with atomic_output(output, force=force) as f:
        image.save(f, format="PNG")
    print(output)
