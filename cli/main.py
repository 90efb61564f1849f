"""`aec`: pack, unpack and inspect .aec files; train models.

The app and its shared options live in app.py; the commands in coding.py
(pack, unpack, info, bench) and training.py (train, fetch-mnist).
"""

from __future__ import annotations

from . import coding, training  # noqa: F401 - importing them registers their commands
from .app import app


def run() -> None:
    """Console-script entry point."""
    app(prog_name="aec")


if __name__ == "__main__":
    run()
