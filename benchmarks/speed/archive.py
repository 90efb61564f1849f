"""The archive operations on a big file: list, extract one member, random access, as whole processes.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.archive [--images 1000000] [--runs 3] [--tmp DIR]

Packs the MNIST test digits repeated to --images images (one .npy, the
default level and effort), then times, median of --runs, with peak memory
(max RSS of the child): `aec list` to /dev/null; `aec unpack F NAME` of one
image drawn at random (another each run), beside the import floor (a Python
that imports NumPy, h5py, Typer and Pillow, what the extraction runs on); a
Python process that opens the file with `aec.open` and reads 256 random
images (the time after open is reported separately).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aec.datasets import load_mnist

from ..common import command_line, write_results

AEC = [sys.executable, "-m", "aec"]
RANDOM_READ = (
    "import sys, time, numpy as np, aec\n"
    "start = time.perf_counter()\n"
    "data = aec.open(sys.argv[1])\n"
    "opened = time.perf_counter()\n"
    "batch = data[np.random.default_rng(0).choice(len(data), 256, replace=False)]\n"
    "done = time.perf_counter()\n"
    "print(opened - start, done - opened, batch.shape)\n"
)


# What any process that extracts an image must import first: the dependencies `aec unpack` runs on, timed beside
# each extraction (this VM's speed drifts from minute to minute).
IMPORT_FLOOR = "import numpy, h5py, typer, PIL.Image"

# Runs a command and reports its wall time and peak RSS alone (a fresh parent, so no earlier child counts, and
# the parent's own start-up is not timed).
WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True)\n"
    "wall = time.perf_counter() - start\n"
    "sys.stdout.write(done.stdout)\n"
    "sys.stderr.write(f'{wall} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n"
)


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the command, its stdout)."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], check=True, capture_output=True, text=True)
    wall, peak = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(peak) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    test = load_mnist("test")[0]
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        images = np.resize(test, (args.images, *test.shape[1:]))
        np.save(tmp / "big.npy", images)
        del images
        start = time.perf_counter()
        subprocess.run(AEC + ["pack", str(tmp / "big.npy"), "-o", str(tmp / "big.aec"), "-q"], check=True)
        pack_s = time.perf_counter() - start
        size = (tmp / "big.aec").stat().st_size
        # A different image each run, drawn at random: most live in full chunks (4,096 images, 4 blocks).
        drawn = np.random.default_rng(1).choice(args.images, args.runs, replace=False)
        names = [f"{i:0{len(str(args.images - 1))}d}.png" for i in drawn]
        lists, extracts, opens, reads, rss = [], [], [], [], {"list": 0.0, "extract": 0.0, "random": 0.0}
        floors = []
        for run in range(args.runs):
            wall, peak, _ = timed(AEC + ["list", str(tmp / "big.aec")])
            lists.append(wall)
            rss["list"] = max(rss["list"], peak)
            out = tmp / f"one-{run}"
            floors.append(timed([sys.executable, "-c", IMPORT_FLOOR])[0])
            wall, peak, _ = timed(AEC + ["unpack", str(tmp / "big.aec"), names[run], "-o", str(out), "-q"])
            extracts.append(wall)
            rss["extract"] = max(rss["extract"], peak)
            _, peak, stdout = timed([sys.executable, "-c", RANDOM_READ, str(tmp / "big.aec")])
            opened, read, _ = stdout.split(maxsplit=2)
            opens.append(float(opened))
            reads.append(float(read))
            rss["random"] = max(rss["random"], peak)
    results = {
        "command": command_line(),
        "images": args.images,
        "file_bytes": size,
        "pack_s": pack_s,
        "list_s": statistics.median(lists),
        "extract_one_s": statistics.median(extracts),
        "import_floor_s": statistics.median(floors),
        "extracted": names,
        "open_s": statistics.median(opens),
        "random_256_after_open_s": statistics.median(reads),
        "peak_rss_mb": rss,
        "runs": {"list": lists, "extract": extracts, "import_floor": floors, "open": opens, "random_256": reads},
    }
    for key in ("pack_s", "list_s", "extract_one_s", "import_floor_s", "open_s", "random_256_after_open_s"):
        print(f"{key}: {results[key]:.3f}")
    print(f"peak RSS MB: {rss}")
    print(f"wrote {write_results('archive', results, path=args.json)}")


if __name__ == "__main__":
    main()
