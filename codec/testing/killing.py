"""Kill aec pack/unpack at random moments and check that no partial file sits under a final name."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .. import verify

AEC = [sys.executable, "-m", "aec"]


def make_folder(folder: Path, images: np.ndarray, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(images[i % len(images)]).save(folder / f"{i:05d}.png")
    return folder


def partial_files(folder: Path) -> list[Path]:
    """Files under final (non-hidden) names that are not complete, valid PNGs."""
    bad = []
    for path in folder.rglob("*.png"):
        if path.name.startswith("."):
            continue
        try:
            with Image.open(path) as img:
                img.load()
        except Exception:  # noqa: BLE001 - any failure to read back is a partial file
            bad.append(path)
    return bad


def kill_pack_once(src: Path, target: Path, delay: float) -> str:
    """Start a pack, SIGKILL it after `delay` s; 'finished', or 'killed' with the target absent or whole."""
    target.unlink(missing_ok=True)
    proc = subprocess.Popen(AEC + ["pack", str(src), "-o", str(target), "-q"])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if target.exists():
        verify(target)  # must be the complete file (raises if not)
        return "finished"
    return "killed"


def kill_unpack_once(archive: Path, out: Path, delay: float) -> tuple[str, list[Path]]:
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen(AEC + ["unpack", str(archive), "-o", str(out), "-q"])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    return ("finished" if code == 0 else "killed"), partial_files(out) if out.exists() else []
