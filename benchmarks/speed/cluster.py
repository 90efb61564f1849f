"""Pack on a local cluster: throughput with one and two workers, Dask against Ray, side by side in one run.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.cluster [--images 4000] [--effort 1]

The first --images MNIST test digits as one .npy, packed at --effort:
by `aec.pack` alone (its own reader processes); on a local Dask cluster
(127.0.0.1) of one worker and of two (one thread each), through
`aec.pack(..., cluster=ADDRESS)`, checked byte-identical; and, for the
comparison that chose Dask, the same slices encoded by Ray tasks (a local
Ray of one and two CPUs) with the same task function.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import aec
from aec.cluster import _array_slice
from aec.datasets import load_mnist
from aec.models import resolve_model
from aec.pack_inputs import SEARCH_SLICE

from ..common import command_line, write_results


def dask_pack(npy: Path, out: Path, workers: int, effort: int) -> float:
    import distributed

    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        start = time.perf_counter()
        aec.pack([npy], out, effort=effort, cluster=cluster.scheduler_address, force=True)
        return time.perf_counter() - start


def ray_encode(npy: Path, count: int, cpus: int, effort: int) -> float:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    try:
        model = ray.put(resolve_model())
        task = ray.remote(_array_slice)
        start = time.perf_counter()
        futures = [
            task.remote(str(npy), (28, 28), first, min(SEARCH_SLICE, count - first), "auto", model, effort)
            for first in range(0, count, SEARCH_SLICE)
        ]
        ray.get(futures)
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--effort", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    images = load_mnist("test")[0][: args.images]
    results: dict = {"command": command_line(), "images": len(images), "effort": args.effort}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "in.npy", images)
        start = time.perf_counter()
        aec.pack([tmp / "in.npy"], tmp / "alone.aec", effort=args.effort)
        results["alone_s"] = time.perf_counter() - start
        for workers in (1, 2):
            seconds = dask_pack(tmp / "in.npy", tmp / f"dask{workers}.aec", workers, args.effort)
            same = (tmp / f"dask{workers}.aec").read_bytes() == (tmp / "alone.aec").read_bytes()
            results[f"dask_{workers}_workers_s"] = seconds
            results[f"dask_{workers}_workers_identical"] = same
            print(f"dask, {workers} worker(s): {seconds:.2f} s, identical bytes: {same}")
        try:
            for cpus in (1, 2):
                results[f"ray_{cpus}_cpus_s"] = ray_encode(tmp / "in.npy", len(images), cpus, args.effort)
                print(f"ray, {cpus} cpu(s): {results[f'ray_{cpus}_cpus_s']:.2f} s (encoding only)")
        except ImportError:
            print("ray is not installed: no Ray figures")
    results["dask_speedup_2_vs_1"] = results["dask_1_workers_s"] / results["dask_2_workers_s"]
    print(f"alone: {results['alone_s']:.2f} s; Dask 2 workers vs 1: {results['dask_speedup_2_vs_1']:.2f}x")
    print(f"wrote {write_results('cluster', results, path=args.json)}")


if __name__ == "__main__":
    main()
