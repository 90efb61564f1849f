"""Coverage-guided fuzzing of pack's input readers with atheris (on demand: `make fuzz`).

    python tests/fuzz/make_corpus.py CORPUS_DIR inputs
    python tests/fuzz/fuzz_inputs.py CORPUS_DIR -max_total_time=60 -timeout=2 -rss_limit_mb=1024

The first byte of an input picks the reader (KINDS), the rest is the file it reads:
an image file (Pillow and the plain-PNG fast path, then prepare with --resize), .npy,
.npz or IDX (raw or gzip) through read_array_file, whose first and last images are
then read as pack reads them. Every input must either read or raise one of the
project's errors (AecError); anything else is a finding.
"""

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from aec.arrays import read_array_file
    from aec.errors import AecError
    from aec.prepare import load_prepared

KINDS = ("image", "npy", "npz", "idx")  # make_corpus.INPUT_KINDS
FOLDER = tempfile.mkdtemp(prefix="aec-fuzz-inputs-")
NAMES = {"image": "digit.png", "npy": "digits.npy", "npz": "digits.npz", "idx": "digits-images-idx3-ubyte"}
SHAPE = (28, 28)
SLICE = 64  # images pack reads from an array at a time


def read(kind: str, path: str) -> None:
    if kind == "image":
        pixels, _, _ = load_prepared(path, SHAPE, "auto", resize=True)
        assert pixels.shape == SHAPE and pixels.dtype.name == "uint8"
        return
    images, labels = read_array_file(path, SHAPE)
    for start in (0, max(0, len(images) - SLICE)):
        chunk = images[start : start + SLICE]
        assert chunk.shape[1:] == SHAPE and chunk.dtype.name == "uint8"
    assert labels is None or len(labels) == len(images)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    path = os.path.join(FOLDER, NAMES[kind])
    with open(path, "wb") as f:
        f.write(data[1:])
    try:
        read(kind, path)
    except AecError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
