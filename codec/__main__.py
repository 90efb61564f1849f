"""`python -m aec`: the same as the `aec` command."""

from .cli.main import run

run()
