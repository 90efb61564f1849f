"""A user's --model FILE as an attacker would write it: every one is refused quickly, in one line, with little memory."""

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import aec
from aec import modelguard, weights
from aec.errors import ModelError
from aec.modelfile import write_model

SHIPPED = weights.FOLDER / "mnist-q3.h5"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"
PATIENCE = modelguard.READ_SECONDS + 10  # a refusal that takes longer than this is a hang


def hostile(tmp_path: Path, edit, name: str = "hostile.h5") -> Path:
    """A copy of a shipped model, edited with h5py by `edit(file)`."""
    path = tmp_path / name
    path.write_bytes(SHIPPED.read_bytes())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def load_elsewhere(path: Path, seconds: float = modelguard.READ_SECONDS) -> tuple[str, int]:
    """(what loading `path` as a user's model gives, the most memory in KiB it took) in a new process,
    so that a hang or a crash fails the test instead of stopping the run."""
    code = (
        "import resource, sys, aec\n"
        f"aec.modelguard.READ_SECONDS = {seconds}\n"
        "try:\n    aec.resolve_model(sys.argv[1]); print('accepted')\n"
        "except aec.ModelError as err:\n    print(f'ModelError: {err}')\n"
        # VmHWM, not RUSAGE_SELF: a process's ru_maxrss starts from the RSS of the process that forked it (pytest's).
        "own = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
        "print(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path.name} hangs")
    assert done.returncode == 0, f"reading {path.name}: exit status {done.returncode}, {done.stderr[-2000:]}"
    outcome, peak = done.stdout.splitlines()
    return outcome, int(peak)


def refused(path: Path, seconds: float = modelguard.READ_SECONDS) -> str:
    """The ModelError that loading `path` as a user's model gives, checked to be one line, quick and small."""
    start = time.monotonic()
    outcome, peak_kib = load_elsewhere(path, seconds)
    assert outcome.startswith("ModelError: "), f"{path.name}: {outcome}"
    message = outcome.removeprefix("ModelError: ")
    assert path.name in message
    assert time.monotonic() - start < PATIENCE and peak_kib < 400 << 10
    return message


def replace(f, name: str, **create) -> np.ndarray:
    """Delete dataset `name` and create it again with `create` (h5py create_dataset arguments); its old values."""
    data = f[name][()]
    del f[name]
    f.create_dataset(name, **create)
    return data


def step_values() -> np.ndarray:
    with h5py.File(SHIPPED, "r") as f:
        return f["quant/step"][()]


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)  # nothing ever writes to it: opening it to read blocks for ever
    return path


def test_external_link_to_a_fifo(tmp_path, fifo):
    def edit(f):
        del f["quant/step"]
        f["quant/step"] = h5py.ExternalLink(str(fifo), "/step")

    assert "external link" in refused(hostile(tmp_path, edit))


def test_external_link_to_another_model_file(tmp_path):
    """The weights would come from another file, unseen by whoever checks this one."""
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["step"] = step_values()

    def edit(f):
        del f["quant/step"]
        f["quant/step"] = h5py.ExternalLink(str(other), "/step")

    assert "external link" in refused(hostile(tmp_path, edit))


def test_soft_link_to_nowhere(tmp_path):
    def edit(f):
        f["quant/extra"] = h5py.SoftLink("/nowhere")

    assert "soft link" in refused(hostile(tmp_path, edit))


def test_hard_link_loop(tmp_path):
    def edit(f):
        f["encoder/0/loop"] = f["/"]

    assert "second time" in refused(hostile(tmp_path, edit))


def test_external_storage_in_a_fifo(tmp_path, fifo):
    def edit(f):
        step = step_values()
        replace(f, "quant/step", shape=step.shape, dtype=step.dtype, external=[(str(fifo), 0, step.nbytes)])

    assert "outside the model file" in refused(hostile(tmp_path, edit))


def test_external_storage_reads_another_local_file(tmp_path):
    """Raw external storage reads any file's bytes as weights: here the right ones, so nothing else would notice."""
    step = step_values()
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(step.astype("<f4").tobytes())

    def edit(f):
        replace(f, "quant/step", shape=step.shape, dtype="<f4", external=[(str(elsewhere), 0, step.nbytes)])

    assert "outside the model file" in refused(hostile(tmp_path, edit))


def test_virtual_dataset(tmp_path):
    step = step_values()
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f["step"] = step

    def edit(f):
        del f["quant/step"]
        layout = h5py.VirtualLayout(shape=step.shape, dtype=step.dtype)
        layout[:] = h5py.VirtualSource(str(source), "step", shape=step.shape)
        f.create_virtual_dataset("quant/step", layout)

    assert "virtual dataset" in refused(hostile(tmp_path, edit))


def test_declared_4gib_dataset_in_a_small_file(tmp_path):
    def edit(f):
        latents = f["entropy/counts"].shape[0]
        # Chunked and compressed, no chunk written: the file stays small, a reader would fill 4 GiB.
        replace(
            f,
            "entropy/counts",
            shape=(latents, (4 << 30) // 4 // latents),
            dtype="<u4",
            chunks=(1, 1 << 20),
            compression="gzip",
            fillvalue=1,
        )

    path = hostile(tmp_path, edit)
    assert path.stat().st_size < 3 << 20
    assert "beyond the limits" in refused(path)


def test_huge_layer_count(tmp_path):
    """The reader loops over the declared count of exact decoder layers before the fingerprint is checked."""

    def edit(f):
        f["exact"].attrs["exact_layers"] = 1 << 40

    assert "layers" in refused(hostile(tmp_path, edit))


def test_deeply_nested_metadata(tmp_path):
    def edit(f):
        f.attrs["metadata"] = "[" * 100_000 + "]" * 100_000

    assert "nests deeper" in refused(hostile(tmp_path, edit))


def test_deeply_nested_groups(tmp_path):
    def edit(f):
        f.create_group("/".join(["deeper"] * 200))

    assert "nests deeper" in refused(hostile(tmp_path, edit))


def test_many_objects(tmp_path):
    def edit(f):
        group = f.create_group("many")
        for i in range(modelguard.MAX_OBJECTS + 1):
            group.create_group(str(i))

    assert "objects" in refused(hostile(tmp_path, edit))


# Two-byte changes to the shipped model, found by a random search: h5py crashed the process (SIGSEGV)
# or raised RuntimeError on them.
FLIPS = [[(1305, 110), (674894, 161)], [(702, 7), (1787610, 137)], [(1577, 126), (1662445, 73)]]


@pytest.mark.parametrize("flips", FLIPS, ids=["segfault", "link-runtime-error", "info-runtime-error"])
def test_two_byte_changes(tmp_path, flips):
    data = bytearray(SHIPPED.read_bytes())
    for offset, value in flips:
        data[offset] = value
    path = tmp_path / "flipped.h5"
    path.write_bytes(bytes(data))
    refused(path)


def test_one_byte_that_makes_libhdf5_spin(tmp_path):
    """The size of the global heap that holds the string attributes, made larger: h5py spins for minutes
    (found by fuzz_model.py). Only the child's time limit stops it."""
    data = bytearray(SHIPPED.read_bytes())
    heap = data.index(b"GCOL")
    data[heap + 9] = 0xFF  # the second byte of the collection's size
    path = tmp_path / "spins.h5"
    path.write_bytes(bytes(data))
    assert "took longer than 2 s" in refused(path, seconds=2)


def test_the_model_file_is_a_fifo(fifo):
    assert "not a regular file" in refused(fifo.rename(fifo.with_suffix(".h5")))


def test_a_reader_that_hangs_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(modelguard, "_CHILD", "import time; time.sleep(60)")
    monkeypatch.setattr(modelguard, "READ_SECONDS", 1.0)
    path = tmp_path / "slow.h5"
    path.write_bytes(SHIPPED.read_bytes()[:-1])
    start = time.monotonic()
    with pytest.raises(ModelError, match="slow.h5: reading the model file took longer than 1 s"):
        aec.resolve_model(str(path))
    assert time.monotonic() - start < 5


def test_a_reader_that_grows_is_stopped(tmp_path):
    """The child's address space is limited: a huge allocation fails there, not in the caller."""
    code = f"from {modelguard.__name__} import _limit_child; _limit_child(); bytearray({modelguard.READ_MEMORY})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode != 0 and "MemoryError" in done.stderr


def test_a_users_own_model_file_still_reads(tmp_path):
    """A sound model that is not shipped goes through the guarded reader and comes back whole."""
    shipped = aec.resolve_model("mnist-q3")
    model = dataclasses.replace(
        shipped, metadata={"note": "retrained at home", "nested": [[{"ok": [1]}]]}, fingerprint=b""
    )
    assert model.fingerprint != shipped.fingerprint
    path = write_model(model, tmp_path / "mine.h5")
    back = aec.resolve_model(str(path))
    assert modelguard.read_untrusted(path).fingerprint == model.fingerprint
    assert back.fingerprint == model.fingerprint and back.decoder_fingerprint == model.decoder_fingerprint
    assert back.metadata == model.metadata and back.exact is not None


def _nested_metadata(f):
    f.attrs["metadata"] = "[" * 100_000 + "]" * 100_000


def _fifo_storage(f):
    step = f["quant/step"][()]
    replace(
        f,
        "quant/step",
        shape=step.shape,
        dtype=step.dtype,
        external=[(str(Path(f.filename).parent / "fifo"), 0, step.nbytes)],
    )


def _huge(f):
    replace(f, "entropy/counts", shape=(1 << 16, 1 << 14), dtype="<u4", chunks=(1, 1 << 14), compression="gzip")


@pytest.mark.parametrize("edit", [_nested_metadata, _fifo_storage, _huge], ids=["nested", "fifo", "huge"])
def test_cli_one_line_error(tmp_path, fifo, edit):
    path = hostile(tmp_path, edit)
    container = tmp_path / "made.aec"
    container.write_bytes(aec.encode(np.zeros((1, 28, 28), np.uint8)))
    for command in (
        ["pack", EXAMPLES, "-o", tmp_path / "out.aec", "--model", path],
        ["unpack", container, "-o", tmp_path / "out", "--model", path],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "aec", *map(str, command)], capture_output=True, text=True, timeout=PATIENCE
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("aec: ") and str(path.name) in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out.aec").exists() and not (tmp_path / "out").exists()
