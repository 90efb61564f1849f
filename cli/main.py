"""`aec`: pack, unpack and inspect .aec files; train models.

The app and its shared options live in app.py; the commands in coding.py
(pack, unpack, info, bench), files.py (list, cat, show) and training.py
(train, fetch-mnist).
"""

from __future__ import annotations

import gc
import sys

import click

from . import coding, files, training  # noqa: F401 - importing them registers their commands
from .app import app, print_error


def run() -> None:
    """Console-script entry point: click's own handling, but usage errors as one `aec: ...` line with a hint."""
    try:
        code = app(prog_name="aec", standalone_mode=False)
        # The command is done (its outputs closed and in place). The interpreter's cyclic collections at exit
        # would walk every object of some 400 modules, about 50 ms: a tenth of extracting one image. Frozen
        # objects are left to the process's end; reference counting, atexit and weakref finalizers still run.
        gc.freeze()
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx is not None else "aec"
        if err.format_message():  # `aec` alone has printed the help already
            print_error(f"{err.format_message()} (see '{where} -h')")
        sys.exit(err.exit_code)
    except click.ClickException as err:
        print_error(err.format_message())
        sys.exit(err.exit_code)
    except click.Abort:
        print_error("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
