"""What the benchmarks share: where their results go, the record of the machine, image folders.

Every benchmark writes its JSON through `write_results`, beside RESULTS.md in
benchmarks/results/<name>.json, with the date and the machine it ran on.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT / "examples" / "digits"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The machine a figure was measured on: CPU model and cores, Python and numpy versions."""
    return {
        "cpu": cpu_model(),
        "architecture": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def results_path(name: str) -> Path:
    return RESULTS / f"{name}.json"


def write_results(name: str, results: dict, path: Path | None = None, allow_nan: bool = True) -> Path:
    """Write `results` as JSON to benchmarks/results/<name>.json (or `path`), after the date and the machine.

    "date" and "machine" are this helper's: the ones in `results` (say, a file read back to be updated) are replaced.
    """
    path = results_path(name) if path is None else Path(path)
    stamp = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    record = {**stamp, **{k: v for k, v in results.items() if k not in stamp}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, allow_nan=allow_nan) + "\n")
    return path


def command_line() -> str:
    """This run's command, as it can be typed again from the repository root (with the AEC_DATA it saw)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = ["python", "-m", spec.name] if spec else ["python", sys.argv[0]]
    return " ".join(["AEC_DATA=" + os.environ.get("AEC_DATA", ""), *program, *map(shlex.quote, sys.argv[1:])])


def read_folder(folder: Path, names: list[str]) -> np.ndarray:
    """uint8 [N, H, W]: the named image files of `folder`, in that order, as 8-bit grey."""
    return np.stack([np.asarray(Image.open(folder / n).convert("L")) for n in names])


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under `folder` (what a folder of PNGs costs, without file-system overhead)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def example_images() -> np.ndarray:
    """The 48 quick-start digits (examples/digits), uint8 [48, 28, 28]."""
    return np.stack([np.asarray(Image.open(p)) for p in sorted(EXAMPLES.glob("*.png"))])
