"""Pack speed of this checkout against an earlier revision and the read floor, interleaved in one run.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.pack_against REVISION [--runs 21] [--tmp DIR] [--json OUT]

This VM's speed drifts by tens of percent between minutes, and the read floor
(one process) and pack (two reader processes) drift differently; so each run
times, one right after the other, the read floor, `aec pack` of REVISION and
`aec pack` of this checkout on the same 10,000-PNG folder (MNIST test digits
named 00000_7.png ...), and the figures are medians over the runs of each
ratio. REVISION's tree is checked out with `git worktree` and imported ahead
of the editable install (PYTHONPATH), the same Python and libraries; both
packs must write the same bytes.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from aec.datasets import load_mnist

from ..common import ROOT, results_path, write_results
from .throughput import READ_FLOOR, compile_sources, seconds


def revision_tree(revision: str, into: Path) -> Path:
    """A folder to put on PYTHONPATH so that `python -m aec` runs REVISION: its codec/ as `aec`, with
    its cli/ and weights/ inside, as the installed package lays them out."""
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", into / "tree", revision], check=True,
                   capture_output=True)  # fmt: skip
    package = into / "path" / "aec"
    package.mkdir(parents=True)
    for entry in (into / "tree" / "codec").iterdir():
        os.symlink(entry, package / entry.name)
    os.symlink(into / "tree" / "cli", package / "cli")
    os.symlink(into / "tree" / "weights", package / "weights")
    compileall.compile_dir(into / "tree", quiet=1)
    return into / "path"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the test files (default: system temp)")
    parser.add_argument("--json", type=Path, default=results_path("pack_against"))
    args = parser.parse_args()
    compile_sources()
    images, labels = load_mnist("test")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        src = tmp / "mnist-test"
        src.mkdir()
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            Image.fromarray(image).save(src / f"{i:05d}_{label}.png")
        older = revision_tree(args.revision, tmp)
        try:
            floor_cmd = [sys.executable, "-c", READ_FLOOR, src]
            pack = [sys.executable, "-m", "aec", "pack", src, "-f", "-q", "-o"]
            env_older = {**os.environ, "PYTHONPATH": str(older)}
            rows = {"read floor s": [], "pack, older s": [], "pack, this checkout s": []}
            for _ in range(args.runs):
                rows["read floor s"].append(seconds(lambda: subprocess.run(floor_cmd, check=True)))
                rows["pack, older s"].append(
                    seconds(lambda: subprocess.run(pack + [tmp / "older.aec"], check=True, env=env_older))
                )
                rows["pack, this checkout s"].append(
                    seconds(lambda: subprocess.run(pack + [tmp / "new.aec"], check=True))
                )
            same_bytes = (tmp / "older.aec").read_bytes() == (tmp / "new.aec").read_bytes()
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tmp / "tree"], capture_output=True)
    floor, old, new = rows.values()

    def median_ratio(a: list[float], b: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(a, b))

    results = {
        "revision": args.revision,
        "files_in": str(args.tmp or tempfile.gettempdir()),
        "runs": args.runs,
        "medians": {key: statistics.median(values) for key, values in rows.items()},
        "ratios, median of the per-run ratios": {
            "this checkout / read floor": median_ratio(new, floor),
            "older / read floor": median_ratio(old, floor),
            "this checkout / older": median_ratio(new, old),
        },
        "this checkout / read floor, quartiles": statistics.quantiles([x / y for x, y in zip(new, floor)], n=4),
        "same bytes": same_bytes,
        "all_runs": rows,
    }
    write_results("pack_against", results, args.json)
    for key, value in {**results["medians"], **results["ratios, median of the per-run ratios"]}.items():
        print(f"| {key} | {value:.3f} |")
    print(f"| same bytes | {same_bytes} |")


if __name__ == "__main__":
    main()
