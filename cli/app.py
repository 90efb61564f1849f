"""The Typer app and what every command shares: options, error handling, progress bars.

Exit codes (as gzip and zstd): 0 success, 1 any error (bad or corrupt input,
model mismatch, I/O), 2 usage error, 130 interrupted. Errors are one line on
stderr; --debug shows the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from typing import Annotated, Callable, Optional

import typer
from click.exceptions import ClickException

import aec
from aec.errors import AecError

app = typer.Typer(
    name="aec",
    help="A learned lossy codec for 28x28 grayscale digits: a folder of PNGs in, one small .aec file out.",
    add_completion=False,
    no_args_is_help=True,
    suggest_commands=False,  # click suggests the command a typo was near; Typer's own hint would repeat it
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


def no_empty_path(value: str | None, option: str = "'--output'") -> None:
    """An empty path (`-o ''`) names no file: refuse it rather than fall back to the current folder."""
    if value is not None and not str(value).strip():
        raise typer.BadParameter("give a file or folder name, not an empty string", param_hint=option)


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control characters, line breaks and other unprintable
    characters (they may come from file names) escaped, so one message stays one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_error(message: str) -> None:
    print(f"aec: {printable(message)}", file=sys.stderr)


def log_lines(quiet: bool) -> Callable[[str], None]:
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
        print_error(str(err))
        raise typer.Exit(1)
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(130)
    except (typer.Exit, typer.Abort, SystemExit, ClickException):
        raise  # usage errors keep click's message and exit code 2
    except BrokenPipeError:
        raise  # the reader went away (`aec list | head`): click ends quietly (exit 1)
    except MemoryError:
        if debug:
            raise
        print_error("out of memory: this input needs more than the machine has (README: the limits aec enforces)")
        raise typer.Exit(1)
    except OSError as err:  # permission, disk full, an unusable /dev/shm: the system's words, and the file
        if debug:
            raise
        print_error(f"{err.filename}: {err.strerror or err}" if err.filename else f"{err.strerror or err}")
        raise typer.Exit(1)
    except Exception as err:  # noqa: BLE001 - the last line of defence for users
        if debug:
            raise
        print_error(f"internal error: {type(err).__name__}: {err} (run with --debug for details)")
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


# A job done sooner shows no bar: importing rich and drawing the bar cost a 10,000-PNG pack about
# 0.07 s of its 0.8 (measured in a terminal), for a bar that would flash for half a second.
SHOW_PROGRESS_AFTER_SECONDS = 1.0


class _LateProgress:
    """A rich progress bar on stderr that appears once the job has run SHOW_PROGRESS_AFTER_SECONDS,
    counting from the start what was done before it appeared."""

    def __init__(self, description: str, stack: contextlib.ExitStack):
        self.description, self.stack = description, stack
        self.start = time.monotonic()
        self.total: int | None = None
        self.done = 0
        self.bar = self.task = None

    def on_start(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def advance(self, n: float) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.advance(self.task, n)
        elif time.monotonic() - self.start >= SHOW_PROGRESS_AFTER_SECONDS:
            self._show()

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = self.stack.enter_context(
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
        )
        self.task = self.bar.add_task(self.description, total=self.total, completed=self.done)


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool):
    """(on_start(total), advance(n)) callbacks driving a progress bar on stderr, if it is a terminal
    (shown once the job has run a second: _LateProgress)."""
    if quiet or not sys.stderr.isatty():
        yield (lambda total: None), (lambda n: None)
        return
    with contextlib.ExitStack() as stack:
        late = _LateProgress(description, stack)
        yield late.on_start, late.advance
