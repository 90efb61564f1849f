"""Structure-aware mutations of small valid .aec files, every checksum repaired, through info, unpack --test and
unpack: each run ends with its answer or a one-line error, within a time and memory bound.

    python -m benchmarks.robustness.mutations [--cases 50000] [--seed 2026] [--jobs 2] [--json OUT]

Seeds: formats 1.0, 1.1 and 2.0 (residuals), with labels, inverted and resized images, one and several
chunks, and one chunk of 1,100 images in blocks (entropy coder 2, with block checksums: 2.1). Each case parses a seed into its parts (header fields, pixel checksums, names table, chunk heads,
records, latent streams), changes one to three of them, and writes the file back with the header, names
and chunk CRCs made right again (so that the mutation reaches the code behind the checksums); in some
cases the pixel checksums are dropped too, so that unpack writes what mutated latents decode to. Each
case runs in a child forked from this pre-imported process, its address space capped (RLIMIT_AS) and its
time limited: `aec info`, `aec unpack --test`, `aec unpack` to a folder, `aec unpack --format npy` and
`aec unpack F '*0.png'` (members: only their blocks decoded where the file has block checksums).
A run's outcome is ok, a one-line AecError, or anything else (an internal error: a bug). Peak memory is
the child's ru_maxrss (os.wait4), which includes the ~baseline_rss_mb this process holds when it forks.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread each: children fork
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import lzma  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import aec  # noqa: E402
from aec.container import _BODY, MAGIC  # noqa: E402
from aec.record import FLAG_INVERTED, FLAG_RESIZED  # noqa: E402
from aec.testing.hostile import _FAST_LZMA, crafted_file, likeliest_latents, numbered_names  # noqa: E402

from ..common import example_images, results_path, write_results  # noqa: E402
from .hostile_containers import run_in_process  # noqa: E402

LIMIT_AS = 1 << 30  # bytes of address space a case's child may map
CASE_SECONDS = 20  # a child still running after this is killed (a "timeout" outcome)
RUN_SECONDS = 2.0  # the bound each run is held to
PEAK_MB = 300  # the bound on a child's peak RSS
COMMANDS = ("info", "unpack --test", "unpack", "unpack --format npy", "unpack MEMBERS")


# --- seeds -------------------------------------------------------------------------------------------------------


def seeds(tmp: Path) -> dict[str, bytes]:
    """Small valid files of every format and feature the reader knows."""
    images = example_images()
    out = {
        "1.1-one": aec.encode(images[:1]),
        "1.1-chunks": aec.encode(images[:20], chunk_size=8),
        "2.0-lossless": aec.encode(images[:6], max_error=0),
        "2.0-chunks": aec.encode(images[:12], max_error=3, chunk_size=5),
    }
    model = aec.resolve_model(quality=1)
    out["1.0-q1"] = crafted_file(model, likeliest_latents(model, 9), numbered_names(9), chunk_size=4, pixel_crcs=False)
    folder = tmp / "seed"
    folder.mkdir()
    for i in range(10):
        picture = images[i]
        if i % 3 == 1:
            picture = 255 - picture  # inverted on pack
        if i % 3 == 2:
            picture = np.asarray(Image.fromarray(picture).resize((40 + i, 33)))  # resized on pack
        Image.fromarray(picture).save(folder / f"{i}.png")
    aec.pack([folder], tmp / "flags.aec", resize=True, chunk_size=4)
    out["1.1-flags"] = (tmp / "flags.aec").read_bytes()
    np.savez(tmp / "labelled.npz", images=images[:10], labels=np.arange(10))
    aec.pack([tmp / "labelled.npz"], tmp / "labels.aec", chunk_size=6)
    out["1.1-labels"] = (tmp / "labels.aec").read_bytes()
    aec.pack([tmp / "labelled.npz"], tmp / "labels2.aec", chunk_size=4, max_error=2)
    out["2.0-labels"] = (tmp / "labels2.aec").read_bytes()
    # Entropy coder 2 with block checksums: one chunk of more than 1,024 images (shifted copies, some rescued).
    many = np.concatenate([np.roll(images, k, axis=2) for k in range(-(-1100 // len(images)))])[:1100]
    blocks = aec.encode(many)
    out[f"{aec.info(blocks)['format_version']}-blocks"] = blocks
    return out


# --- the container as parts, and back with its CRCs right ---------------------------------------------------------


class Parts:
    """A container cut into its parts; bytes() joins them with every CRC made right (header, names, chunks)."""

    def __init__(self, data: bytes):
        self.major, self.minor, length = struct.unpack_from("<BBH", data, 8)
        body = data[12 : 12 + length]
        self.fields = list(_BODY.unpack_from(body))
        self.extension = body[_BODY.size :]
        at = 12 + length + 4
        self.names = data[at : at + self.fields[11]]
        at += len(self.names)
        self.chunks = []  # [images, info, latents]
        while at < len(data):
            images, info_length, latent_length, _ = struct.unpack_from("<IIII", data, at)
            at += 16
            self.chunks.append(
                [images, data[at : at + info_length], data[at + info_length : at + info_length + latent_length]]
            )
            at += info_length + latent_length

    def to_bytes(self, fix_names: bool = True) -> bytes:
        fields = list(self.fields)
        if fix_names:
            fields[11] = len(self.names)
            fields[13] = zlib.crc32(self.names)
        body = _BODY.pack(*fields) + self.extension
        prefix = struct.pack("<BBH", self.major, self.minor, len(body) & 0xFFFF)
        out = [MAGIC, prefix, body, struct.pack("<I", zlib.crc32(prefix + body)), self.names]
        for images, info, latents in self.chunks:
            head = struct.pack("<III", images, len(info), len(latents))
            out += [head, struct.pack("<I", zlib.crc32(latents, zlib.crc32(info, zlib.crc32(head)))), info, latents]
        return b"".join(out)


FIELD_TOPS = {"H": 0xFFFF, "B": 0xFF, "I": 0xFFFFFFFF}
FIELD_KINDS = ["32s", "H", "H", "H", "B", "B", "I", "I", "I", "I", "B", "I", "I", "I"]  # as _BODY


def _odd_value(rng, old: int, top: int) -> int:
    choices = [0, 1, 2, top, top - 1, old + 1, max(old - 1, 0), old * 2, old + 4096, 1 << 20, (1 << 20) + 1]
    choices += [int(rng.integers(0, top + 1)), old ^ (1 << int(rng.integers(0, 32 if top > 0xFFFF else 16)))]
    return min(max(int(choices[rng.integers(len(choices))]), 0), top)


def _mutate_header(p: Parts, rng) -> str:
    index = int(rng.integers(1, len(FIELD_KINDS)))
    top = FIELD_TOPS[FIELD_KINDS[index]]
    p.fields[index] = _odd_value(rng, p.fields[index], top)
    if index in (6, 7) and rng.random() < 0.6:  # keep chunk_count consistent, to reach the chunks
        p.fields[8] = -(-p.fields[6] // max(p.fields[7], 1)) & 0xFFFFFFFF
    return f"header:{_BODY_NAMES[index]}"


_BODY_NAMES = [
    "fingerprint", "height", "width", "latents", "quality", "coder_id", "image_count", "chunk_size",
    "chunk_count", "flags", "names_codec", "names_stored_length", "names_raw_length", "names_crc",
]  # fmt: skip


def _mutate_prefix(p: Parts, rng) -> str:
    what = rng.integers(4)
    if what == 0:
        p.major = int(rng.choice([0, 1, 2, 3, 255]))
    elif what == 1:
        p.minor = int(rng.choice([0, 1, 2, 255]))
    elif what == 2:  # the pixel checksums: dropped, cut short, one changed, another kind
        ext = bytearray(p.extension)
        if ext and rng.random() < 0.5:
            ext[int(rng.integers(len(ext)))] ^= 1 << int(rng.integers(8))
        else:
            ext = ext[: int(rng.integers(len(ext) + 1))]
        p.extension = bytes(ext)
    else:
        p.extension += bytes(int(rng.integers(1, 64)))
    return "prefix"


def _raw_names(p: Parts) -> bytes | None:
    try:
        return lzma.decompress(
            p.names, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
        )
    except lzma.LZMAError:
        return None


def _mutate_names(p: Parts, rng) -> str:
    raw = _raw_names(p)
    if raw is None:
        return "names:undecodable"
    entries = raw.split(b"\0")
    what = int(rng.integers(8))
    b = bytearray(raw)
    if what == 0 and b:  # a shared-prefix byte or a name byte changed
        b[int(rng.integers(len(b)))] = int(rng.choice([0, 1, 47, 46, 92, 255, int(rng.integers(256))]))
    elif what == 1:  # a long name
        b = bytearray(b"\0" + b"x" * int(rng.choice([255, 4000, 4096, 4097, 9000])) + b"\0") + b
    elif what == 2:  # a name repeated
        b += b"\0" + (entries[1] if len(entries) > 1 else b"0.png") + b"\0"
    elif what == 3:  # an unsafe name
        bad = [b"../x.png", b"/abs.png", b"a//b.png", b"C:x.png", b"a\\b.png", b"\x01.png", b"\xff\xfe", b"."]
        b = bytearray(b"\0" + bad[int(rng.integers(len(bad)))] + b"\0") + b
    elif what == 4:  # a name dropped or cut
        b = b[: int(rng.integers(len(b) + 1))]
    elif what == 5:  # the header's raw length made wrong, the table kept
        p.fields[12] = _odd_value(rng, p.fields[12], 0xFFFFFFFF)
        return "names:raw_length"
    elif what == 6:  # many more names than images
        b += b"".join(b"\0n%d\0" % i for i in range(int(rng.integers(1, 5000))))
    else:  # bytes of the compressed table changed
        c = bytearray(p.names)
        if c:
            c[int(rng.integers(len(c)))] ^= 1 << int(rng.integers(8))
        p.names = bytes(c)
        return "names:compressed"
    p.names = lzma.compress(bytes(b), format=lzma.FORMAT_RAW, filters=_FAST_LZMA)
    p.fields[12] = len(b)
    return f"names:{what}"


def _mutate_record(p: Parts, rng) -> str:
    chunk = p.chunks[int(rng.integers(len(p.chunks)))]
    count = min(chunk[0], 1 << 16)  # an earlier mutation may have made it billions: the file stays small
    try:
        raw = bytearray(zlib.decompress(chunk[1])) if chunk[1] else bytearray(count)
    except zlib.error:
        raw = bytearray(count)
    what = int(rng.integers(6))
    if what == 0 and raw:  # a flag byte
        raw[int(rng.integers(min(count, len(raw)) or 1))] = int(rng.choice([1, 2, 4, 8, 16, 24, 32, 64, 128, 255, 12]))
    elif what == 1 and raw:  # any byte: geometry, labels, max errors
        raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
    elif what == 2 and len(raw) > count:  # a uint16 of geometry (or a label's half) set high
        at = count + 2 * int(rng.integers((len(raw) - count) // 2 or 1))
        raw[at : at + 2] = struct.pack("<H", int(rng.choice([0, 1, 4096, 4097, 65535, int(rng.integers(65536))])))
    elif what == 3:  # a resized image, with a geometry row that may be huge
        flags = bytearray(raw[:count]).ljust(count, b"\0")
        if count:
            flags[int(rng.integers(count))] |= FLAG_RESIZED
        side = int(rng.choice([1, 28, 4096, 4097, 65535]))
        row = struct.pack(
            "<10H", side, side, 0, 0, side, side, 0, 0, int(rng.integers(1, 29)), int(rng.integers(1, 29))
        )
        raw = flags + row * int(rng.integers(1, 3)) + raw[count:]
    elif what == 4:  # cut or grown
        raw = raw[: int(rng.integers(len(raw) + 1))] if rng.random() < 0.5 else raw + bytes(int(rng.integers(1, 40)))
    else:  # every image inverted (the others' bits kept)
        for i in range(min(count, len(raw))):
            raw[i] |= FLAG_INVERTED
    chunk[1] = zlib.compress(bytes(raw), 9) if rng.random() < 0.95 else bytes(raw)
    return f"record:{what}"


def _mutate_stream(p: Parts, rng) -> str:
    chunk = p.chunks[int(rng.integers(len(p.chunks)))]
    words = bytearray(chunk[2])
    what = int(rng.integers(6))
    if what == 0 and words:  # bit flips
        for _ in range(int(rng.integers(1, 4))):
            words[int(rng.integers(len(words)))] ^= 1 << int(rng.integers(8))
    elif what == 1 and len(words) >= 4:  # one word set to an edge value
        at = 4 * int(rng.integers(len(words) // 4))
        words[at : at + 4] = struct.pack("<I", int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])))
    elif what == 2:  # cut to a word boundary, or not
        words = words[: int(rng.integers(len(words) + 1))]
    elif what == 3:  # random words appended
        words += rng.integers(0, 256, 4 * int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif what == 4:  # the tail made random (the residual, the escapes)
        at = int(rng.integers(len(words) + 1))
        words[at:] = rng.integers(0, 256, len(words) - at, dtype=np.uint8).tobytes()
    else:  # all zero or all ones
        words = bytearray(bytes([int(rng.choice([0, 255]))]) * len(words))
    chunk[2] = bytes(words)
    return f"stream:{what}"


def _mutate_chunks(p: Parts, rng) -> str:
    what = int(rng.integers(5))
    i = int(rng.integers(len(p.chunks)))
    if what == 0:
        p.chunks[i][0] = _odd_value(rng, p.chunks[i][0], 0xFFFFFFFF)
    elif what == 1:
        p.chunks.insert(i, list(p.chunks[i]))
    elif what == 2 and len(p.chunks) > 1:
        del p.chunks[i]
    elif what == 3 and len(p.chunks) > 1:
        j = int(rng.integers(len(p.chunks)))
        p.chunks[i][2], p.chunks[j][2] = p.chunks[j][2], p.chunks[i][2]
    else:  # images and chunk size made to agree with a count: far more images than bytes
        n = int(rng.choice([1 << 16, 1 << 20, 10**7, 2**32 - 1]))
        p.chunks[i][0] = min(n, 1 << 20)
        p.fields[6], p.fields[7] = n, min(n, 1 << 20)
        p.fields[8] = -(-n // p.fields[7])
    return f"chunks:{what}"


MUTATORS = [_mutate_header, _mutate_prefix, _mutate_names, _mutate_record, _mutate_stream, _mutate_chunks]
WEIGHTS = np.array([3, 1, 2, 3, 3, 1], float)


def mutate(seed: bytes, rng) -> tuple[str, bytes]:
    p = Parts(seed)
    kinds = []
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        mutator = MUTATORS[int(rng.choice(len(MUTATORS), p=WEIGHTS / WEIGHTS.sum()))]
        try:
            kinds.append(mutator(p, rng))
        except (IndexError, ValueError, struct.error):  # a part an earlier mutation emptied: another case
            kinds.append(f"{mutator.__name__[8:]}:skipped")
    if rng.random() < 0.2 and p.extension[:1] == b"\x01":  # no pixel checksums: mutated latents get written
        p.extension, p.minor = b"", 0
        kinds.append("no-pixel-crcs")
    return "+".join(kinds), p.to_bytes()


# --- running ------------------------------------------------------------------------------------------------------


def _cli(args: list[str]) -> tuple[int, str]:
    """`aec ARGS` in this process: (exit code, stderr); an exception the CLI lets through is a finding."""
    try:
        return run_in_process(args)
    except BaseException as e:  # noqa: BLE001
        return 99, f"escaped: {type(e).__name__}: {e}"


def _outcome(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    if code == 0:
        return "ok"
    if code == 1 and len(lines) == 1 and lines[0].startswith("aec: ") and "internal error" not in lines[0]:
        return "error"
    return "internal"


def run_case(path: Path, work: Path) -> list[dict]:
    """In the child: the five commands on one file; per run its outcome, seconds, and the first error line."""
    runs = []
    for command in COMMANDS:
        args = _args_for(command, path, work)
        began = time.perf_counter()
        code, err = _cli(args)
        seconds = time.perf_counter() - began
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs.append({"command": command, "outcome": _outcome(code, err), "seconds": seconds, "rss_mb": rss,
                     "message": err.strip().splitlines()[0][:200] if err.strip() else ""})  # fmt: skip
    return runs


def child(path: Path, work: Path, write_fd: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))
        signal.alarm(CASE_SECONDS)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        result = run_case(path, work)
        os.write(write_fd, json.dumps(result).encode())
    except BaseException as e:  # noqa: BLE001
        os.write(write_fd, json.dumps([{"command": "?", "outcome": "internal", "seconds": 0, "rss_mb": 0,
                                        "message": f"child: {type(e).__name__}: {e}"[:200]}]).encode())  # fmt: skip
    finally:
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=results_path("mutations"))
    args = parser.parse_args()

    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp_name:
        tmp = Path(tmp_name)
        seed_files = seeds(tmp)
        names = sorted(seed_files)
        for name in names:  # warm every model, import and cache before the children fork
            (tmp / "warm").mkdir()
            (tmp / f"{name}.aec").write_bytes(seed_files[name])
            for command in COMMANDS:
                assert _outcome(*_cli(_args_for(command, tmp / f"{name}.aec", tmp / "warm"))) == "ok", (name, command)
            shutil.rmtree(tmp / "warm")
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rng = np.random.default_rng(args.seed)
        outcomes: collections.Counter = collections.Counter()
        by_command: dict[str, collections.Counter] = {c: collections.Counter() for c in COMMANDS}
        kinds: collections.Counter = collections.Counter()
        findings, slowest, biggest, timeouts, over = [], [], [], 0, collections.Counter()
        running: dict[int, tuple] = {}
        began = time.perf_counter()

        def reap(block: bool) -> None:
            nonlocal timeouts
            pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            case, kind, seed_name, read_fd, case_dir, started = running.pop(pid)
            with os.fdopen(read_fd, "rb") as f:
                data = f.read()
            wall = time.perf_counter() - started
            peak = usage.ru_maxrss / 1024
            try:
                runs = json.loads(data) if data else []
            except ValueError:
                runs = []
            if not runs:
                timeouts += 1
                runs = [{"command": "?", "outcome": "timeout" if os.WIFSIGNALED(status) else "internal",
                         "seconds": wall, "rss_mb": peak, "message": f"child status {status}"}]  # fmt: skip
            for run in runs:
                outcomes[run["outcome"]] += 1
                if run["command"] in by_command:
                    by_command[run["command"]][run["outcome"]] += 1
                record = {"case": case, "seed": seed_name, "mutation": kind, **run}
                if run["outcome"] not in ("ok", "error"):
                    findings.append(record)
                over["runs over 2 s"] += run["seconds"] > RUN_SECONDS
                slowest.append(record)
            over["cases over the peak"] += peak > PEAK_MB
            biggest.append({"case": case, "seed": seed_name, "mutation": kind, "peak_rss_mb": peak, "wall": wall})
            slowest.sort(key=lambda r: -r["seconds"])
            del slowest[10:]
            biggest.sort(key=lambda r: -r["peak_rss_mb"])
            del biggest[10:]
            shutil.rmtree(case_dir, ignore_errors=True)

        for case in range(args.cases):
            seed_name = names[case % len(names)]
            kind, data = mutate(seed_files[seed_name], rng)
            kinds[kind.split("+")[0].split(":")[0]] += 1
            case_dir = Path(tempfile.mkdtemp(dir=tmp))
            path = case_dir / "m.aec"
            path.write_bytes(data)
            while len(running) >= args.jobs:
                reap(True)
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                child(path, case_dir, write_fd)
            os.close(write_fd)
            running[pid] = (case, kind, seed_name, read_fd, case_dir, time.perf_counter())
            if case % 5000 == 4999:
                print(f"{case + 1} cases, {time.perf_counter() - began:.0f} s, {dict(outcomes)}", file=sys.stderr)
        while running:
            reap(True)
        elapsed = time.perf_counter() - began

    runs = sum(outcomes.values())
    worst_seconds = slowest[0]["seconds"] if slowest else 0.0
    worst_peak = biggest[0]["peak_rss_mb"] if biggest else 0.0
    results = {
        "command": "python -m benchmarks.robustness.mutations " + " ".join(sys.argv[1:]),
        "cases": args.cases,
        "runs": runs,
        "seeds": names,
        "mutation_kinds": dict(kinds),
        "outcomes": dict(outcomes),
        "outcomes_by_command": {c: dict(v) for c, v in by_command.items()},
        "internal_errors": len(findings),
        "timeouts": timeouts,
        "runs_over_2s": over["runs over 2 s"],
        "cases_over_peak": over["cases over the peak"],
        "slowest_run_seconds": worst_seconds,
        "peak_rss_mb": worst_peak,
        "baseline_rss_mb": baseline,
        "limits": {
            "rlimit_as_mb": LIMIT_AS >> 20,
            "case_seconds": CASE_SECONDS,
            "run_seconds": RUN_SECONDS,
            "peak_mb": PEAK_MB,
        },  # fmt: skip
        "passed": not findings and worst_seconds <= RUN_SECONDS and worst_peak <= PEAK_MB,
        "elapsed_seconds": elapsed,
        "jobs": args.jobs,
        "slowest": slowest,
        "biggest": biggest,
        "findings": findings[:50],
    }
    write_results("mutations", results, args.json)
    print(json.dumps({k: v for k, v in results.items() if k not in ("slowest", "biggest", "findings")}, indent=2))
    for finding in findings[:10]:
        print(finding, file=sys.stderr)


def _args_for(command: str, path: Path, work: Path) -> list[str]:
    return {
        "info": ["info", str(path)],
        "unpack --test": ["unpack", "--test", str(path)],
        "unpack": ["unpack", str(path), "-o", str(work / "out"), "-q"],
        "unpack --format npy": ["unpack", str(path), "--format", "npy", "-o", str(work / "out.npy"), "-q"],
        # Members: only their blocks decoded and checked (block checksums), or their chunks.
        "unpack MEMBERS": ["unpack", str(path), "*0.png", "-o", str(work / "some"), "-q"],
    }[command]


if __name__ == "__main__":
    main()
