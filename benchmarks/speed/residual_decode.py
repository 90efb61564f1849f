"""The residual decoder against an earlier revision of it, side by side in one process.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.residual_decode --against REV [--repeats 9]

Packs the 10,000 MNIST test digits at levels 3, 4 and 5 and lossless
(`--max-error 0`), then times `aec.decode` of each file with today's residual
coder and with `codec/residual.py` as it was at git revision REV (loaded from
`git show`), turn about, and reports the medians. Both must give the same
pixels (the residual coder is part of the format), which is checked. Also
times the residual decoder alone on a chunk of 1, 10 and 100 rescued images,
the case where its fixed cost per chunk shows.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import constriction
import numpy as np

import aec
from aec import residual, runtime
from aec.datasets import load_mnist

from ..common import ROOT, command_line, write_results

CASES = {"level 3 (default)": {"quality": 3}, "level 4": {"quality": 4}, "level 5": {"quality": 5}}
LOSSLESS = "lossless (--max-error 0)"


def residual_at(revision: str):
    """codec/residual.py as it was at `revision`, as a module of its own (same package, so its imports work)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:codec/residual.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "residual_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("aec.residual_then", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side_by_side(run, then_code, repeats: int) -> tuple[float, float]:
    """Median seconds of run() with today's residual._code and with then_code, turn about."""
    now_code, times = residual._code, {"now": [], "then": []}
    try:
        for _ in range(repeats):
            for which, code in (("then", then_code), ("now", now_code)):
                residual._code = code
                began = time.perf_counter()
                run()
                times[which].append(time.perf_counter() - began)
    finally:
        residual._code = now_code
    return float(np.median(times["now"])), float(np.median(times["then"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="git revision of the residual coder to compare with")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    then = residual_at(args.against)
    images = load_mnist("test")[0]
    rows = []
    for name, options in [*CASES.items(), (LOSSLESS, {"max_error": 0})]:
        model = aec.resolve_model(quality=options.get("quality", 1))
        data = aec.encode(images, **options)
        pixels = aec.decode(data, model=model)
        residual._code, now_code = then._code, residual._code
        try:
            if not np.array_equal(aec.decode(data, model=model), pixels):
                raise SystemExit(f"{name}: the two residual coders give different pixels")
        finally:
            residual._code = now_code
        now, before = side_by_side(lambda: aec.decode(data, model=model), then._code, args.repeats)
        rows.append(_row(name, len(images), now, before))
    model = aec.resolve_model(quality=3)
    for count in (1, 10, 100):
        chunk = images[:count]
        predictions = runtime.decode_latents(model, runtime.encode_latents(model, chunk)).reshape(chunk.shape)
        bounds = np.full(count, 22, np.int16)  # a typical rescue at the default level
        categorical = constriction.stream.model.Categorical(perfect=False)  # as the container's coder 1 uses it
        encoder = constriction.stream.queue.RangeEncoder()
        residual.encode(encoder, categorical, chunk, predictions, bounds)
        words = encoder.get_compressed()

        def decode_residual():
            residual.decode(constriction.stream.queue.RangeDecoder(words), categorical, predictions, bounds)

        now, before = side_by_side(decode_residual, then._code, 3 * args.repeats)
        rows.append(_row(f"residual alone, a chunk with {count} rescued", count, now, before))
    results = {"command": command_line(), "against": args.against, "repeats": args.repeats, "rows": rows}
    print(f"wrote {write_results('residual_decode', results, path=args.json)}")


def _row(name: str, images: int, now: float, before: float) -> dict:
    print(f"{name:45s} now {now * 1000:8.1f} ms  then {before * 1000:8.1f} ms  {before / now:.2f}x", flush=True)
    return {"case": name, "images": images, "now_s": now, "then_s": before, "speed_up": before / now}


if __name__ == "__main__":
    sys.exit(main())
