"""Mutated containers through `aec info` and `aec unpack --test`: exit codes, one-line errors, time, memory.

    python -m benchmarks.robustness.hostile_containers [--count 100000] [--processes 300] [--json OUT]

Each mutation (truncation, bit flips, random bytes, inserted bytes, a header
field set to an odd value with its CRC fixed) of a real 20-image container is
run through the CLI in this process (fast), and a sample through real `aec`
processes. Reports exit codes, the slowest call, whether any traceback or
multi-line error appeared, and peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import typer.main

import aec
from aec.cli.main import app
from aec.testing.hostile import mutations

from ..common import ROOT, example_images, results_path, write_results

ALLOWED_CODES = {0, 1}


def run_in_process(args: list[str], _command=[]) -> tuple[int, str]:
    """The CLI as `aec ARGS` runs it, minus process start-up (Typer builds its command once)."""
    if not _command:
        _command.append(typer.main.get_command(app))
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            _command[0].main(args, prog_name="aec")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, err.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=300)
    parser.add_argument("--json", type=Path, default=results_path("hostile_containers"))
    args = parser.parse_args()

    images = example_images()
    base = aec.encode(images[:20], chunk_size=8)
    rng = np.random.default_rng(2026)
    codes: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    slowest, problems = 0.0, []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.aec"
        for n, (kind, data) in enumerate(mutations(base, rng, args.count)):
            path.write_bytes(data)
            kinds[kind.split(":")[0]] += 1
            for command in (["info", str(path)], ["unpack", "--test", str(path)]):
                t0 = time.perf_counter()
                code, err = run_in_process(command)
                slowest = max(slowest, time.perf_counter() - t0)
                codes[code] += 1
                lines = err.strip().splitlines()
                if (
                    code not in ALLOWED_CODES
                    or "Traceback" in err
                    or "internal error" in err
                    or (code and len(lines) != 1)
                ):
                    problems.append({"kind": kind, "command": command[0], "code": code, "stderr": err[:300]})
            if n % 10000 == 9999:
                print(f"{n + 1} mutations, {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
        in_process_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        sub_codes: collections.Counter = collections.Counter()
        sub_slowest = 0.0
        for kind, data in mutations(base, np.random.default_rng(7), args.processes):
            path.write_bytes(data)
            for command in (["info", str(path)], ["unpack", "--test", str(path)]):
                t0 = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "aec", *command], capture_output=True, text=True, timeout=30, cwd=ROOT
                )
                sub_slowest = max(sub_slowest, time.perf_counter() - t0)
                sub_codes[done.returncode] += 1
                if (
                    done.returncode not in ALLOWED_CODES
                    or "Traceback" in done.stderr
                    or (done.returncode and len(done.stderr.strip().splitlines()) != 1)
                ):
                    problems.append(
                        {
                            "kind": kind,
                            "command": command[0],
                            "code": done.returncode,
                            "stderr": done.stderr[:300],
                            "process": True,
                        }
                    )
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    results = {
        "mutations": args.count,
        "calls_in_process": sum(codes.values()),
        "exit_codes_in_process": dict(sorted(codes.items())),
        "mutation_kinds": dict(sorted(kinds.items())),
        "slowest_call_seconds": round(slowest, 4),
        "peak_rss_mb_in_process": round(in_process_rss, 1),
        "calls_as_processes": sum(sub_codes.values()),
        "exit_codes_as_processes": dict(sorted(sub_codes.items())),
        "slowest_process_seconds": round(sub_slowest, 3),
        "peak_rss_mb_of_a_process": round(child_rss, 1),
        "problems": problems[:20],
        "problem_count": len(problems),
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_results("hostile_containers", results, args.json)
    print(json.dumps(results, indent=2))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
