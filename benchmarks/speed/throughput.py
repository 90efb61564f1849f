"""Speed, side by side in one run: aec against the floors it cannot beat, as ratios.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.throughput [--runs 3] [--million] [--tmp DIR] [--json OUT]

- pack of the 10,000-PNG MNIST test folder vs reading those PNGs into one
  array with Pillow in one process (the read floor) and vs `tar czf`;
- unpack to PNGs vs writing those PNGs with Pillow (the write floor) and vs `tar xzf`;
  aec is timed as a whole process, so the floors that the ratios use are whole
  processes too (`python` + `import numpy, PIL` + the loop over the files); the
  same loops timed inside this process are reported beside them;
- pack/unpack of the test set as an array file (.npy in, .npy out), whole process;
- aec.encode / aec.decode throughput in memory;
- cold start of `aec --help` and `aec info` vs `python -c "import numpy, PIL.Image, h5py"`;
- peak memory (max RSS) of pack and unpack at 10k and (--million) 1M images (.npy, streamed).
Medians of --runs runs; every figure of a row comes from the same run loop.
--tmp DIR: where the folders are written (default: the system's temporary folder).
On a VM's disk the time to write 10,000 small files depends on what was
written and deleted before (see benchmarks/RESULTS.md), so `--tmp /dev/shm`
(RAM) shows what aec itself costs against the floor.
Results: benchmarks/results/speed.json (the committed speed-ram.json is a run with --tmp /dev/shm).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import aec
from aec.datasets import load_mnist

from ..common import ROOT, results_path, write_results

AEC = [sys.executable, "-m", "aec"]
# The floors as programs a user could run: one process, Pillow, the files in sorted order.
READ_FLOOR = (
    "import os, sys, numpy as np; from PIL import Image; d = sys.argv[1]; "
    "np.stack([np.asarray(Image.open(os.path.join(d, n))) for n in sorted(os.listdir(d))])"
)
WRITE_FLOOR = (
    "import os, sys, numpy as np; from PIL import Image; images = np.load(sys.argv[1]); "
    "os.mkdir(sys.argv[2]); "
    "[Image.fromarray(a).save(os.path.join(sys.argv[2], f'{i:05d}.png')) for i, a in enumerate(images)]"
)
RSS_PROBE = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: list, cpu: int | None = None) -> None:
    """Run cmd to completion; cpu: pin it to that CPU (to show how fast each core is on its own)."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    done = subprocess.run([str(c) for c in cmd], capture_output=True, preexec_fn=pin)
    if done.returncode:
        raise SystemExit(f"{cmd} failed: {done.stderr.decode()[-500:]}")


def peak_rss_mb(cmd: list) -> float:
    done = subprocess.run([sys.executable, "-c", RSS_PROBE, *map(str, cmd)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{cmd} failed: {done.stderr[-500:]}")
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def read_floor(folder: Path, names: list[str]) -> None:
    np.stack([np.asarray(Image.open(folder / n)) for n in names])


def write_floor(folder: Path, images: np.ndarray, names: list[str]) -> None:
    folder.mkdir()
    for name, image in zip(names, images):
        Image.fromarray(image).save(folder / name)


def compile_sources() -> None:
    """Byte-compile aec's own modules, as `pip install` does for an installed package.

    This checkout is an editable install; with PYTHONDONTWRITEBYTECODE=1 (set
    on some machines) every `aec` process would otherwise compile codec/ and
    cli/ from source again, which shows in the short runs (see benchmarks/RESULTS.md).
    """
    for package in ("codec", "cli", "weights"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--million", action="store_true", help="also measure memory at 1,000,000 images")
    parser.add_argument("--json", type=Path, default=results_path("speed"))
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the test files (default: system temp)")
    args = parser.parse_args()
    compile_sources()
    images, _ = load_mnist("test")
    names = [f"{i:05d}.png" for i in range(len(images))]
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        src = tmp / "mnist-test"
        write_floor(src, images, names)
        np.save(tmp / "test.npy", images)
        for _ in range(args.runs):
            for p in [tmp / "a.aec", tmp / "t.tgz", tmp / "n.aec", tmp / "back.npy"]:
                p.unlink(missing_ok=True)
            for d in [tmp / "out", tmp / "floor", tmp / "untar"]:
                shutil.rmtree(d, ignore_errors=True)
            add("read floor (Pillow, 1 process) s", seconds(lambda: run([sys.executable, "-c", READ_FLOOR, src])))
            add("read floor, inside this process s", seconds(lambda: read_floor(src, names)))
            # The cores of a VM need not be equal (here one also serves the disk's interrupts).
            for cpu in sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []:
                add(
                    f"read floor pinned to CPU {cpu} s",
                    seconds(lambda: run([sys.executable, "-c", READ_FLOOR, src], cpu=cpu)),
                )
            add("aec pack folder s", seconds(lambda: run(AEC + ["pack", src, "-o", tmp / "a.aec", "-q"])))
            add("tar czf folder s", seconds(lambda: run(["tar", "czf", tmp / "t.tgz", "-C", tmp, "mnist-test"])))
            add(
                "write floor (Pillow, 1 process) s",
                seconds(lambda: run([sys.executable, "-c", WRITE_FLOOR, tmp / "test.npy", tmp / "floor"])),
            )
            shutil.rmtree(tmp / "floor")
            add("write floor, inside this process s", seconds(lambda: write_floor(tmp / "floor", images, names)))
            add("aec unpack to PNGs s", seconds(lambda: run(AEC + ["unpack", tmp / "a.aec", "-o", tmp / "out", "-q"])))
            (tmp / "untar").mkdir()
            add("tar xzf s", seconds(lambda: run(["tar", "xzf", tmp / "t.tgz", "-C", tmp / "untar"])))
            add("aec pack .npy s", seconds(lambda: run(AEC + ["pack", tmp / "test.npy", "-o", tmp / "n.aec", "-q"])))
            add(
                "aec unpack to .npy s",
                seconds(lambda: run(AEC + ["unpack", tmp / "n.aec", "--format", "npy", "-o", tmp / "back.npy", "-q"])),
            )
            add("import floor s", seconds(lambda: run([sys.executable, "-c", "import numpy, PIL.Image, h5py"])))
            add("aec --help s", seconds(lambda: run(AEC + ["--help"])))
            add("aec info s", seconds(lambda: run(AEC + ["info", tmp / "a.aec"])))
            model = aec.resolve_model()
            data = aec.encode(images, model=model)
            add("aec.encode images/s", len(images) / seconds(lambda: aec.encode(images, model=model)))
            add("aec.decode images/s", len(images) / seconds(lambda: aec.decode(data, model=model)))
        memory = {
            "pack 10k .npy": peak_rss_mb(AEC + ["pack", tmp / "test.npy", "-o", tmp / "m1.aec", "-q"]),
            "unpack 10k to .npy": peak_rss_mb(
                AEC + ["unpack", tmp / "m1.aec", "--format", "npy", "-o", tmp / "m1.npy", "-q"]
            ),
            "pack 10k PNG folder": peak_rss_mb(AEC + ["pack", src, "-o", tmp / "m2.aec", "-q"]),
            "unpack 10k to PNGs": peak_rss_mb(AEC + ["unpack", tmp / "m2.aec", "-o", tmp / "m2", "-q"]),
        }
        if args.million:
            big = np.lib.format.open_memmap(tmp / "million.npy", mode="w+", dtype=np.uint8, shape=(1_000_000, 28, 28))
            for start in range(0, len(big), len(images)):
                big[start : start + len(images)] = images
            big.flush()
            del big
            memory["pack 1M .npy"] = peak_rss_mb(AEC + ["pack", tmp / "million.npy", "-o", tmp / "m3.aec", "-q"])
            memory["unpack 1M to .npy"] = peak_rss_mb(
                AEC + ["unpack", tmp / "m3.aec", "--format", "npy", "-o", tmp / "m3.npy", "-q"]
            )
    med = {k: statistics.median(v) for k, v in rows.items()}
    pairs = zip(rows["aec pack folder s"], rows["read floor (Pillow, 1 process) s"])
    ratios = {
        "pack / read floor": med["aec pack folder s"] / med["read floor (Pillow, 1 process) s"],
        # The same, run by run (each pack beside the floor timed just before it), then the median:
        # steadier where the VM's cores change speed between runs.
        "pack / read floor, median of per-run ratios": statistics.median(a / b for a, b in pairs),
        "pack / read floor on the fastest CPU": med["aec pack folder s"]
        / min([v for k, v in med.items() if k.startswith("read floor pinned")] or [float("nan")]),
        "pack / tar czf": med["aec pack folder s"] / med["tar czf folder s"],
        "unpack / write floor": med["aec unpack to PNGs s"] / med["write floor (Pillow, 1 process) s"],
        "unpack / tar xzf": med["aec unpack to PNGs s"] / med["tar xzf s"],
        "aec info / import floor": med["aec info s"] / med["import floor s"],
        "aec --help / import floor": med["aec --help s"] / med["import floor s"],
    }
    if args.million:
        ratios["pack memory 1M / 10k"] = memory["pack 1M .npy"] / memory["pack 10k .npy"]
        ratios["unpack memory 1M / 10k"] = memory["unpack 1M to .npy"] / memory["unpack 10k to .npy"]
    results = {
        "files_in": str(args.tmp or tempfile.gettempdir()),
        "runs": args.runs,
        "medians": med,
        "ratios": ratios,
        "peak_rss_mb": memory,
        "all_runs": rows,
    }
    write_results("speed", results, args.json)
    print("| figure | median |\n| --- | --- |")
    for k, v in med.items():
        print(f"| {k} | {v:,.3f} |")
    for k, v in ratios.items():
        print(f"| {k} | {v:.2f}x |")
    for k, v in memory.items():
        print(f"| peak RSS {k} | {v:.0f} MB |")


if __name__ == "__main__":
    main()
