"""`aec`: pack, unpack and inspect .aec files; train models.

The app and its shared options live in app.py; the commands in coding.py
(pack, unpack, info, bench), files.py (list, cat, show) and training.py
(train, fetch-mnist).
"""

from __future__ import annotations

import sys

import click

from . import coding, files, training  # noqa: F401 - importing them registers their commands
from .app import app, print_error


def run() -> None:
    """Console-script entry point: click's own handling, but usage errors as one `aec: ...` line with a hint."""
    _build_only(sys.argv[1] if len(sys.argv) > 1 else "")
    try:
        code = app(prog_name="aec", standalone_mode=False)
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
    _exit_now(code if isinstance(code, int) else 0)


def _build_only(command: str) -> None:
    """Typer makes a click command of every registered command before it parses the arguments (about
    20 ms of every start, a tenth of `aec info`): when the first argument names a command, only that one
    is made. Anything else (an option, a typo, nothing) leaves them all, for the help and the hints."""
    from typer.main import get_command_name

    asked = [c for c in app.registered_commands if (c.name or get_command_name(c.callback.__name__)) == command]
    if asked:
        app.registered_commands[:] = asked


def _exit_now(code: int) -> None:
    """End the process once a command has returned: its outputs are closed and in place, its worker
    processes and threads done. The interpreter's teardown would cost every command about 60 ms: a cyclic
    collection over every object of some 400 modules (50 ms, a tenth of extracting one image), then freeing
    them and the model's arrays (10 ms, measured with the collection skipped). atexit handlers still run,
    and the standard streams are flushed as Python would."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what Python exits with when it cannot flush stdout
    os._exit(code)


if __name__ == "__main__":
    run()
