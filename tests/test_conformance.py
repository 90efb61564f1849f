"""Conformance vectors: .aec files made by earlier versions decode to their recorded pixels, forever.

tests/conformance/vectors.json lists each file with the SHA-256 of its
decoded pixels (uint8 [N, H, W] as `decode` returns them) and the command
that made it. Vectors are added, never removed or regenerated. Files of
models with an exact decoder must decode to those pixels under every BLAS
kernel and thread count; older (float) models only on the machine that made
their vectors.
"""

import dataclasses
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aec
from aec import container, search
from aec.levels import level
from aec.models import model_for_fingerprint, resolve_model

HERE = Path(__file__).resolve().parent / "conformance"
VECTORS = json.loads((HERE / "vectors.json").read_text())
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["file"] for v in VECTORS])
def test_vector_decodes_to_its_recorded_pixels(vector):
    data = (HERE / vector["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vector["file_sha256"], "a vector file was changed"
    pixels = aec.decode(data)
    assert pixels.shape[0] == vector["images"]
    assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() == vector["pixels_sha256"]
    assert aec.info(data)["model_fingerprint"] == vector["fingerprint"]


PACKED_FROM_EXAMPLES = [v for v in VECTORS if v["made_with"].startswith("aec pack examples/digits")]


@pytest.mark.parametrize("vector", PACKED_FROM_EXAMPLES, ids=[v["file"] for v in PACKED_FROM_EXAMPLES])
def test_packing_the_examples_gives_the_same_bytes(vector, tmp_path):
    """pack writes the bytes it wrote before (same model, same inputs, same options)."""
    words = shlex.split(vector["made_with"])
    options = words[words.index("-o") + 2 :]
    quality = int(options[options.index("-Q") + 1]) if "-Q" in options else None
    effort = int(options[options.index("-e") + 1]) if "-e" in options else 0
    out = tmp_path / vector["file"]
    maker = model_for_fingerprint(bytes.fromhex(vector["fingerprint"]))  # a legacy model for the older vectors
    if effort == 0 and not vector.get("effort_0_search") and search.ranked_search(maker, 0):
        # Packed before the model's effort 0 searched the worst-coded images: the encoder's latents alone.
        maker = _without_effort_0_search(maker)
    min_psnr = float(options[options.index("--min-psnr") + 1]) if "--min-psnr" in options else None
    if quality is not None and resolve_model(quality=quality).fingerprint == maker.fingerprint:
        # Made with today's level (its model and, without --min-psnr, its floor).
        aec.pack([EXAMPLES], out, quality=quality, effort=effort, min_psnr=min_psnr)
    elif quality is not None and maker.quality != quality:
        # A level now made with another model (a legacy one made this vector): the level's floor with
        # that model, and the header's informational quality byte as -Q N writes it.
        assert level(quality).model == maker.name
        aec.pack([EXAMPLES], out, model=maker, effort=effort, min_psnr=level(quality).floor)
        out.write_bytes(_with_header_quality(out.read_bytes(), quality))
    else:
        assert maker.quality == (quality or 3)
        # Vectors made before the quality floor existed were packed without one.
        aec.pack([EXAMPLES], out, model=maker, effort=effort, min_psnr=min_psnr or 0)
    assert out.read_bytes() == (HERE / vector["file"]).read_bytes()


def _without_effort_0_search(model):
    search_metadata = {k: v for k, v in model.metadata["search"].items() if k != "effort 0"}
    return dataclasses.replace(model, metadata={**model.metadata, "search": search_metadata}, fingerprint=b"")


def _with_header_quality(data: bytes, quality: int) -> bytes:
    header = container.open_container(data).header
    packed = header.pack()
    assert data.startswith(packed)
    return dataclasses.replace(header, quality=quality).pack() + data[len(packed) :]


WITH_BLOCK_CHECKSUMS = [v for v in VECTORS if v["format_version"] in ("1.2", "2.1")]


@pytest.mark.parametrize("vector", WITH_BLOCK_CHECKSUMS, ids=[v["file"] for v in WITH_BLOCK_CHECKSUMS])
def test_members_extracted_block_by_block_are_the_files_pixels(vector, tmp_path):
    """unpack of a few members decodes only their blocks (checked by the block checksums): the same pixels."""
    path = HERE / vector["file"]
    members = list(aec.list_members(path))
    picks = sorted({0, 1023, 1024, len(members) // 2, len(members) - 1})
    picks += [i for i, m in enumerate(members) if m.flags & 8][:1]  # and one with a residual: its whole chunk
    aec.unpack(path, tmp_path / "some.npy", format="npy", members=[members[i].name for i in sorted(set(picks))])
    np.testing.assert_array_equal(np.load(tmp_path / "some.npy"), aec.decode(path.read_bytes())[sorted(set(picks))])


EXACT = [v for v in VECTORS if v.get("exact_decoder")]
DECODE_ALL = (
    "import hashlib, json, sys; import aec\n"
    "for name in sys.argv[1:]:\n"
    "    pixels = aec.decode(open(name, 'rb').read())\n"
    "    print(hashlib.sha256(pixels.tobytes()).hexdigest())\n"
)


def _blas_settings() -> list[tuple[str | None, int]]:
    """(OPENBLAS_CORETYPE, threads): the default kernel and each older kernel this CPU can run."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    kernels = [None, "Prescott"] + [k for k, need in (("Sandybridge", "avx"), ("Haswell", "avx2")) if need in flags]
    return [(kernel, threads) for kernel in kernels for threads in (1, 2)]


@pytest.mark.parametrize("kernel, threads", _blas_settings(), ids=lambda v: str(v))
def test_exact_vectors_decode_the_same_under_every_blas_kernel_and_thread_count(kernel, threads):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    files = [str(HERE / v["file"]) for v in EXACT]
    done = subprocess.run([sys.executable, "-c", DECODE_ALL, *files], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [v["pixels_sha256"] for v in EXACT]
    assert len(EXACT) >= 9
