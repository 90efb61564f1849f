"""Kill `aec pack` and `aec unpack` at random moments, N times each, and check for partial files.

    python -m benchmarks.robustness.kill_test [--times 50] [--images 20000] [--json OUT]

A killed pack must leave no .aec at the target (or the complete file, if it
had finished); a killed unpack must leave only complete PNGs under final names.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import aec
from aec.testing.killing import kill_pack_once, kill_unpack_once, make_folder

from ..common import example_images, results_path, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=50)
    parser.add_argument("--images", type=int, default=20000)  # pack must still be busy when the kills land
    parser.add_argument("--json", type=Path, default=results_path("kill_test"))
    args = parser.parse_args()
    examples = example_images()
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = make_folder(tmp / "src", examples, args.images)
        pack_outcomes = collections.Counter(
            kill_pack_once(src, tmp / "out.aec", float(rng.uniform(0.2, 2.0))) for _ in range(args.times)
        )
        archive = tmp / "a.aec"
        aec.pack([src], archive)
        unpack_outcomes, partial = collections.Counter(), []
        for _ in range(args.times):
            outcome, bad = kill_unpack_once(archive, tmp / "out", float(rng.uniform(0.3, 3.0)))
            unpack_outcomes[outcome] += 1
            partial += [str(p) for p in bad]
    results = {
        "times": args.times,
        "images": args.images,
        "pack": dict(pack_outcomes),
        "unpack": dict(unpack_outcomes),
        "partial_files_under_final_names": len(partial),
        "examples": partial[:5],
    }
    write_results("kill_test", results, args.json)
    print(json.dumps(results, indent=2))
    sys.exit(1 if partial else 0)


if __name__ == "__main__":
    main()
