"""Seed corpora for the fuzzers (tests/fuzz/fuzz_*.py).

python tests/fuzz/make_corpus.py CORPUS_DIR [container|model|inputs]   (container when not given)

container: real containers (1, 20 and 48 images, flags set) and a few damaged ones.
model:     model files of every format version, small (the reader's structure, few weights), and a shipped one.
inputs:    pack's input files, each prefixed with the byte that tells fuzz_inputs.py which reader gets it
           (fuzz_inputs.KINDS): PNG and other images, .npy, .npz, IDX raw and gzip.
"""

import gzip
import hashlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import aec
from aec import weights
from aec.exact import ExactDecoder, ExactLayer
from aec.idx import idx_bytes
from aec.modelfile import Dense, Model, int8_layer, write_model
from aec.testing.hostile import mutations

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "digits"
INPUT_KINDS = ("image", "npy", "npz", "idx")  # as fuzz_inputs.KINDS (kept apart: that module imports atheris)


def _examples() -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(EXAMPLES.glob("*.png"))])


def container_seeds() -> list[bytes]:
    images = _examples()
    seeds = [aec.encode(images[:1]), aec.encode(images[:20], chunk_size=8), aec.encode(images)]
    rng = np.random.default_rng(0)
    return seeds + [damaged for _, damaged in mutations(seeds[1], rng, 20)]


def _tiny_models() -> list[Model]:
    """Models of every format version with 4 latents: all of a model file's structure in a few kB."""
    rng = np.random.default_rng(0)
    pixels, latents, width = 28 * 28, 4, 8

    def dense(n_in, n_out, activation):
        return Dense(rng.normal(0, 0.1, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32), activation)

    def model(name, encoder, decoder, exact=None):
        counts = rng.integers(1, 50, (latents, width)).astype(np.uint32)
        return Model(
            name=name,
            quality=1,
            image_shape=(28, 28),
            encoder=encoder,
            decoder=decoder,
            quant_step=np.full(latents, 0.5, np.float32),
            table_low=np.full(latents, -3, np.int32),
            table_counts=counts,
            metadata={"seed": name, "nested": {"list": [1, 2.5, "x"]}},
            exact=exact,
        )

    v1 = model("tiny-v1", [dense(pixels, latents, "linear")], [dense(latents, pixels, "sigmoid")])
    v2 = model("tiny-v2", [int8_layer(dense(pixels, latents, "linear"))], [int8_layer(dense(latents, pixels, "relu"))])
    exact = ExactDecoder(
        [
            ExactLayer(
                rng.integers(-2, 3, (latents, pixels)).astype(np.int8),
                np.full(pixels, 0.01, np.float32),
                np.zeros(pixels, np.float32),
            )
        ],
        8,
        np.arange(0, 255, 8, dtype=np.uint8)[:31],
    )
    v3 = model("tiny-v3", [dense(pixels, latents, "linear")], [dense(latents, pixels, "sigmoid")], exact)
    return [v1, v2, v3]


def model_seeds() -> list[bytes]:
    seeds = []
    with tempfile.TemporaryDirectory() as folder:
        for model in _tiny_models():
            seeds.append(write_model(model, Path(folder) / f"{model.name}.h5").read_bytes())
    seeds.append((weights.FOLDER / "mnist-q1.h5").read_bytes())
    rng = np.random.default_rng(1)
    return seeds + [damaged for _, damaged in mutations(seeds[2], rng, 10)]


def _image_files(images: np.ndarray) -> list[bytes]:
    def save(img: Image.Image, fmt: str, **options) -> bytes:
        out = io.BytesIO()
        img.save(out, fmt, **options)
        return out.getvalue()

    gray = Image.fromarray(images[0])
    rgba = Image.fromarray(np.dstack([images[1]] * 3 + [np.full((28, 28), 200, np.uint8)]), "RGBA")
    wide = Image.fromarray(np.pad(images[2], ((4, 4), (10, 10))))
    return [
        (EXAMPLES / sorted(p.name for p in EXAMPLES.glob("*.png"))[0]).read_bytes(),  # as shipped: the fast path
        save(gray, "PNG"),
        save(rgba, "PNG"),
        save(Image.fromarray(images[3].astype(np.uint16) * 257), "PNG"),
        save(gray.convert("P"), "PNG"),
        save(wide, "PNG"),
        save(gray, "BMP"),
        save(gray, "GIF"),
        save(gray.convert("RGB"), "JPEG", quality=90),
        save(gray, "TIFF"),
    ]


def _array_files(images: np.ndarray) -> list[tuple[str, bytes]]:
    def npy(array) -> bytes:
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    def npz(compressed=False, **arrays) -> bytes:
        out = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(out, **arrays)
        return out.getvalue()

    labels = np.arange(3, dtype=np.uint8)
    return [
        ("npy", npy(images[:3])),
        ("npy", npy(images[:2].reshape(2, -1))),
        ("npy", npy(np.asfortranarray(images[:2]))),
        ("npy", npy(images[:2].astype(np.float32))),
        ("npz", npz(images=images[:3], labels=labels)),
        ("npz", npz(True, x=images[:3], y=labels.astype(np.int64))),
        ("npz", npz(arr_0=images[:2])),
        ("idx", idx_bytes(images[:3])),
        ("idx", gzip.compress(idx_bytes(images[:2]))),
        ("idx", idx_bytes(labels)),
    ]


def input_seeds() -> list[bytes]:
    images = _examples()
    files = [("image", data) for data in _image_files(images)] + _array_files(images)
    return [bytes([INPUT_KINDS.index(kind)]) + data for kind, data in files]


SEEDS = {"container": container_seeds, "model": model_seeds, "inputs": input_seeds}


def main(folder: Path, kind: str = "container") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[kind]()
    for data in seeds:
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    print(f"wrote {len(seeds)} {kind} seeds to {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus"), *sys.argv[2:3])
