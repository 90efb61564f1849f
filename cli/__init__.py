"""The `aec` command line (Typer). Thin: parse, call codec, print, map errors to exit codes."""
