"""The exact decoder against the float one it was made from: quality, speed, and sameness under every BLAS kernel.

    AEC_DATA=../shared/data/mnist python -m benchmarks.robustness.exact_decoder [--limit N] [--runs 5]

For each shipped level: the 10,000 MNIST test digits encoded once (effort 0),
decoded by the legacy float model and by the exact model (same latents),
PSNR of each; decode speed of both in this process, side by side (median of
--runs); and the SHA-256 of each decoder's pixels in fresh processes under
every OpenBLAS kernel this CPU runs, with one and two threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aec import runtime, weights
from aec.datasets import load_mnist
from aec.metrics import mse, psnr
from aec.modelfile import read_model

from ..common import command_line, write_results

HASH_ONE = (
    "import hashlib, sys, numpy as np\n"
    "from aec import runtime\n"
    "from aec.modelfile import read_model\n"
    "q = np.load(sys.argv[1])\n"
    "for path in sys.argv[2:]:\n"
    "    print(hashlib.sha256(runtime.decode_latents(read_model(path), q).tobytes()).hexdigest())\n"
)


def blas_settings() -> list[tuple[str | None, int]]:
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    kernels = [None, "Prescott"] + [k for k, need in (("Sandybridge", "avx"), ("Haswell", "avx2")) if need in flags]
    return [(kernel, threads) for kernel in kernels for threads in (1, 2)]


def hashes_under(kernel: str | None, threads: int, latents: Path, models: list[Path]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    done = subprocess.run(
        [sys.executable, "-c", HASH_ONE, str(latents), *map(str, models)], env=env, check=True, capture_output=True
    )
    return done.stdout.decode().split()


def decode_rate(model, latents: np.ndarray, runs: int) -> float:
    runtime.decode_latents(model, latents[:100])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runtime.decode_latents(model, latents)
        times.append(time.perf_counter() - start)
    return len(latents) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N test digits (default: all 10,000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", default=None, help="write here instead of benchmarks/results/exact_decoder.json")
    args = parser.parse_args()
    images = load_mnist("test")[0][: args.limit]
    rows, scratch = [], Path(os.environ.get("TMPDIR", "/tmp")) / f"aec-exact-{os.getpid()}"
    scratch.mkdir(exist_ok=True)
    settings = blas_settings()
    for level in range(1, 6):
        float_path, exact_path = weights.LEGACY / f"mnist-q{level}.h5", weights.FOLDER / f"mnist-q{level}.h5"
        old, new = read_model(float_path), read_model(exact_path)
        latents = runtime.encode_latents(new, images)
        np.save(scratch / "q.npy", latents)
        seen = {kind: set() for kind in ("float", "exact")}
        for kernel, threads in settings:
            for kind, digest in zip(
                ("float", "exact"), hashes_under(kernel, threads, scratch / "q.npy", [float_path, exact_path])
            ):
                seen[kind].add(digest)
        row = {
            "level": level,
            "psnr_float_db": psnr(mse(images, runtime.decode_latents(old, latents))),
            "psnr_exact_db": psnr(mse(images, runtime.decode_latents(new, latents))),
            "decode_float_images_per_s": decode_rate(old, latents, args.runs),
            "decode_exact_images_per_s": decode_rate(new, latents, args.runs),
            "distinct_hashes_float": len(seen["float"]),
            "distinct_hashes_exact": len(seen["exact"]),
        }
        row["psnr_change_db"] = row["psnr_exact_db"] - row["psnr_float_db"]
        row["decode_speed_ratio"] = row["decode_exact_images_per_s"] / row["decode_float_images_per_s"]
        rows.append(row)
        print(
            f"level {level}: float {row['psnr_float_db']:.3f} dB, exact {row['psnr_exact_db']:.3f} dB "
            f"({row['psnr_change_db']:+.3f}); decode {row['decode_float_images_per_s']:,.0f} / "
            f"{row['decode_exact_images_per_s']:,.0f} images/s; distinct pixel hashes over {len(settings)} BLAS "
            f"settings: float {row['distinct_hashes_float']}, exact {row['distinct_hashes_exact']}"
        )
    (scratch / "q.npy").unlink()
    scratch.rmdir()
    settings_named = [
        f"{kernel or 'default'}/{threads} thread{'s' if threads > 1 else ''}" for kernel, threads in settings
    ]
    path = write_results(
        "exact_decoder",
        {"command": command_line(), "images": len(images), "blas_settings": settings_named, "levels": rows},
        path=args.json,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
