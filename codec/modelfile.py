"""Model files: everything the encoder and decoder need, in one HDF5 file.

Written and read with h5py from plain arrays, not Keras' own layout (which
changes between Keras versions and names groups after layer classes). A
model file holds:

  /encoder/<i>/kernel, /encoder/<i>/bias   dense layers, attrs: activation
  /decoder/<i>/kernel, /decoder/<i>/bias
  /<part>/<i>/kernel_scale float32[out]    (version 2) present when the kernel is stored
                                           as int8: kernel = int8 * kernel_scale per column
  /quant/step            float32[latents]  latent = rint(encoder(x) / step)
  /entropy/low           int32[latents]    smallest value in each table
  /entropy/counts        uint32[latents, K] frequency of low+k; column K-1 is the escape
  /exact/<i>/kernel int8, /exact/<i>/scale, /exact/<i>/offset float32[out]   (version 3)
  /exact/output_table    uint8[2R+1]       the exact decoder (exact.py), attrs:
                                           arithmetic, input_limit, exact_layers
  attrs: format, format_version, name, quality, image_height, image_width,
         latents, metadata (JSON), fingerprint

The fingerprint is SHA-256 over a canonical serialisation of all of the above
except the fingerprint itself: it proves the file whole. Kernels enter it as
the float32 values the runtime computes with, however they are stored.

The decoder fingerprint is what a container records: it names exactly what
decoding depends on. For a model with an exact decoder it covers that
decoder, its arithmetic, the entropy tables and the geometry, and nothing an
encoder uses (encoder weights, quantization steps, metadata), so re-packing
or re-annotating a model keeps it. For older models it is the fingerprint,
as the files they made record.

Versions: 1 float32 kernels; 2 adds int8 kernel storage; 3 the exact decoder.
Every version is still read; a reader refuses a newer one rather than misread it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError
from .exact import ARITHMETIC, ExactDecoder, ExactLayer

FORMAT = "aec-model"
READABLE_VERSIONS = (1, 2, 3)
ACTIVATIONS = ("linear", "relu", "sigmoid")
MAX_TABLE_WIDTH = 1 << 16


def _as(array, dtype, name: str) -> np.ndarray:
    """`array` as `dtype`, refusing values the type cannot hold exactly."""
    array = np.asarray(array)
    converted = array.astype(dtype)
    if np.issubdtype(dtype, np.integer) and not np.array_equal(converted, array):
        raise ModelError(f"model {name}: values out of range for {np.dtype(dtype).name}")
    return converted


@dataclass
class Dense:
    kernel: np.ndarray  # float32 [in, out]
    bias: np.ndarray  # float32 [out]
    activation: str
    # When set, kernel is exactly int8 * kernel_scale (per column) and is stored that way.
    kernel_scale: np.ndarray | None = None  # float32 [out]


def int8_layer(layer: Dense) -> Dense:
    """`layer` with its kernel rounded to int8 steps of a per-column scale (largest |weight| -> 127)."""
    scale = (np.abs(layer.kernel).max(axis=0) / 127).astype(np.float32)
    scale[scale == 0] = 1
    steps = np.clip(np.rint(layer.kernel / scale), -127, 127).astype(np.int8)
    return Dense(_dequantize(steps, scale), layer.bias, layer.activation, scale)


def _dequantize(steps: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return steps.astype(np.float32) * scale.astype(np.float32)


def _int8_steps(layer: Dense) -> np.ndarray:
    """The int8 form of a layer with a kernel_scale; ModelError if the kernel is not exactly that."""
    steps = np.rint(layer.kernel / layer.kernel_scale)
    if np.any(np.abs(steps) > 127) or not np.array_equal(_dequantize(steps, layer.kernel_scale), layer.kernel):
        raise ModelError("kernel is not int8 * kernel_scale")
    return steps.astype(np.int8)


@dataclass
class Model:
    name: str
    quality: int
    image_shape: tuple[int, int]
    encoder: list[Dense]
    decoder: list[Dense]
    quant_step: np.ndarray  # float32 [latents]
    table_low: np.ndarray  # int32 [latents]
    table_counts: np.ndarray  # uint32 [latents, K]
    metadata: dict = field(default_factory=dict)
    fingerprint: bytes = b""
    exact: ExactDecoder | None = None  # when set, it alone decides the pixels

    @property
    def latents(self) -> int:
        return int(self.quant_step.shape[0])

    @property
    def pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def __post_init__(self):
        # Every array in its documented type: a model built in memory fingerprints as the same model read back.
        for layer in self.encoder + self.decoder:
            layer.kernel = _as(layer.kernel, np.float32, self.name)
            layer.bias = _as(layer.bias, np.float32, self.name)
            if layer.kernel_scale is not None:
                layer.kernel_scale = _as(layer.kernel_scale, np.float32, self.name)
        self.quant_step = _as(self.quant_step, np.float32, self.name)
        self.table_low = _as(self.table_low, np.int32, self.name)
        self.table_counts = _as(self.table_counts, np.uint32, self.name)
        self.validate()
        if self.exact is not None:
            self.exact.validate(self.name, self.latents, self.pixels)
        if not self.fingerprint:
            self.fingerprint = compute_fingerprint(self)
        self.decoder_fingerprint = self.fingerprint if self.exact is None else compute_decoder_fingerprint(self)

    def validate(self) -> None:
        """Shapes and values a forward pass and the coder can rely on."""
        h, w = self.image_shape
        if not (0 < h <= 4096 and 0 < w <= 4096):
            raise ModelError(f"model {self.name}: bad image shape {self.image_shape}")
        for part, layers, first, last in (
            ("encoder", self.encoder, h * w, None),
            ("decoder", self.decoder, None, h * w),
        ):
            if not layers:
                raise ModelError(f"model {self.name}: empty {part}")
            for i, layer in enumerate(layers):
                if layer.activation not in ACTIVATIONS:
                    raise ModelError(f"model {self.name}: {part} layer {i} has unknown activation {layer.activation!r}")
                if layer.kernel.ndim != 2 or layer.bias.shape != (layer.kernel.shape[1],):
                    raise ModelError(f"model {self.name}: {part} layer {i} has inconsistent shapes")
                if not (np.all(np.isfinite(layer.kernel)) and np.all(np.isfinite(layer.bias))):
                    raise ModelError(f"model {self.name}: {part} layer {i} has non-finite weights")
                # (Whether the kernel is exactly int8 * scale is checked when writing: a file's
                # int8 kernels are that by construction, and start-up time counts.)
                if layer.kernel_scale is not None and (
                    layer.kernel_scale.shape != layer.bias.shape
                    or not np.all(np.isfinite(layer.kernel_scale))
                    or np.any(layer.kernel_scale <= 0)
                ):
                    raise ModelError(f"model {self.name}: {part} layer {i} has a bad kernel scale")
            for a, b in zip(layers, layers[1:]):
                if a.kernel.shape[1] != b.kernel.shape[0]:
                    raise ModelError(f"model {self.name}: {part} layers do not chain")
            if first and layers[0].kernel.shape[0] != first:
                raise ModelError(
                    f"model {self.name}: encoder takes {layers[0].kernel.shape[0]} inputs, images have {first}"
                )
            if last and layers[-1].kernel.shape[1] != last:
                raise ModelError(
                    f"model {self.name}: decoder gives {layers[-1].kernel.shape[1]} outputs, images have {last}"
                )
        n = self.quant_step.shape[0] if self.quant_step.ndim == 1 else -1
        if n <= 0 or self.encoder[-1].kernel.shape[1] != n or self.decoder[0].kernel.shape[0] != n:
            raise ModelError(f"model {self.name}: latent count does not match encoder/decoder")
        if not np.all(np.isfinite(self.quant_step)) or np.any(self.quant_step <= 0):
            raise ModelError(f"model {self.name}: quantization steps must be positive")
        if self.table_low.shape != (n,) or self.table_counts.ndim != 2 or self.table_counts.shape[0] != n:
            raise ModelError(f"model {self.name}: entropy tables do not match {n} latents")
        k = self.table_counts.shape[1]
        if not 2 <= k <= MAX_TABLE_WIDTH:
            raise ModelError(f"model {self.name}: entropy table width {k} out of range")
        if np.any(self.table_counts[:, -1] == 0) or np.any(self.table_counts.sum(axis=1, dtype=np.uint64) == 0):
            raise ModelError(f"model {self.name}: every table needs a non-zero escape count")
        if np.any(np.abs(self.table_low.astype(np.int64)) > 2**30):
            raise ModelError(f"model {self.name}: entropy table range out of bounds")

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


def _canonical_arrays(model: Model) -> list[tuple[str, np.ndarray]]:
    items = []
    for part, layers in (("encoder", model.encoder), ("decoder", model.decoder)):
        for i, layer in enumerate(layers):
            items.append((f"{part}/{i}/kernel", layer.kernel))
            items.append((f"{part}/{i}/bias", layer.bias))
    items += [
        ("quant/step", model.quant_step),
        ("entropy/low", model.table_low),
        ("entropy/counts", model.table_counts),
    ]
    if model.exact is not None:
        items += model.exact.canonical_arrays()
    return items


def needed_version(model: Model) -> int:
    """The oldest format version that holds `model` (1 unless a kernel is stored as int8), so that
    float32 models keep their version 1 files and fingerprints."""
    if model.exact is not None:
        return 3
    return 2 if any(layer.kernel_scale is not None for layer in model.encoder + model.decoder) else 1


def _canonical_attrs(model: Model) -> dict:
    return {
        "format": FORMAT,
        "format_version": needed_version(model),
        "name": model.name,
        "quality": int(model.quality),
        "image_height": int(model.image_shape[0]),
        "image_width": int(model.image_shape[1]),
        "activations": {
            "encoder": [layer.activation for layer in model.encoder],
            "decoder": [layer.activation for layer in model.decoder],
        },
        "metadata": model.metadata,
    } | _exact_attrs(model)


def _exact_attrs(model: Model) -> dict:
    """The exact decoder's scalars (absent for older models, whose fingerprints must not change)."""
    if model.exact is None:
        return {}
    return {
        "arithmetic": ARITHMETIC,
        "input_limit": int(model.exact.input_limit),
        "exact_layers": len(model.exact.layers),
    }


def _digest(attrs: dict, arrays: list[tuple[str, np.ndarray]]) -> bytes:
    """SHA-256 over sorted-key JSON of the attributes, then each array's name, dtype, shape and little-endian bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps(attrs, sort_keys=True, separators=(",", ":")).encode())
    for name, array in arrays:
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digest.update(f"\0{name}\0{little.dtype.str}\0{little.shape}\0".encode())
        digest.update(little.tobytes())
    return digest.digest()


def compute_fingerprint(model: Model) -> bytes:
    """The whole file's fingerprint: every attribute and array."""
    return _digest(_canonical_attrs(model), _canonical_arrays(model))


def compute_decoder_fingerprint(model: Model) -> bytes:
    """What decoding depends on, for a model with an exact decoder (docs/FORMAT.md)."""
    attrs = {
        "format": FORMAT,
        "image_height": int(model.image_shape[0]),
        "image_width": int(model.image_shape[1]),
        "latents": model.latents,
    } | _exact_attrs(model)
    arrays = [("entropy/low", model.table_low), ("entropy/counts", model.table_counts)] + model.exact.canonical_arrays()
    return _digest(attrs, arrays)


def write_model(model: Model, path: str | os.PathLike) -> Path:
    """Write `model` to `path` atomically (temporary file in the same folder, then rename)."""
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            attrs = _canonical_attrs(model)
            for key in ("format", "format_version", "name", "quality", "image_height", "image_width"):
                f.attrs[key] = attrs[key]
            f.attrs["latents"] = model.latents
            f.attrs["metadata"] = json.dumps(model.metadata, sort_keys=True)
            f.attrs["fingerprint"] = model.fingerprint_hex
            f.attrs["decoder_fingerprint"] = model.decoder_fingerprint.hex()  # derived; checked on read
            stored = {
                f"{part}/{i}/kernel": layer
                for part, layers in (("encoder", model.encoder), ("decoder", model.decoder))
                for i, layer in enumerate(layers)
                if layer.kernel_scale is not None
            }
            for name, array in _canonical_arrays(model):
                if name in stored:
                    try:
                        steps = _int8_steps(stored[name])
                    except ModelError:
                        raise ModelError(f"model {model.name}: {name} is not int8 * its kernel_scale") from None
                    # Not gzipped: 13% smaller, but 8 ms more on every pack and unpack start (measured).
                    f.create_dataset(name, data=steps)
                    f.create_dataset(name + "_scale", data=stored[name].kernel_scale)
                else:
                    f.create_dataset(name, data=array)
            for part, layers in (("encoder", model.encoder), ("decoder", model.decoder)):
                f[part].attrs["layers"] = len(layers)
                for i, layer in enumerate(layers):
                    f[f"{part}/{i}"].attrs["activation"] = layer.activation
            for key, value in _exact_attrs(model).items():
                f["exact"].attrs[key] = value
        os.replace(tmp, path)
    except OSError as err:
        raise ModelError(f"{path}: cannot write model file ({err})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _array(f, name: str, dtype, ndim: int, where: Path) -> np.ndarray:
    if name not in f:
        raise ModelError(f"{where}: model file lacks {name}")
    array = f[name][()]
    if not isinstance(array, np.ndarray) or array.ndim != ndim:
        raise ModelError(f"{where}: {name} has the wrong shape")
    return array.astype(dtype, copy=False)


def _read_layer(f, where: str, version: int, path: Path) -> Dense:
    bias = _array(f, f"{where}/bias", np.float32, 1, path)
    activation = str(f[where].attrs["activation"])
    kernel_name = f"{where}/kernel"
    if kernel_name in f and f[kernel_name].dtype == np.int8 and version >= 2:
        steps = _array(f, kernel_name, np.int8, 2, path)
        scale = _array(f, kernel_name + "_scale", np.float32, 1, path)
        if scale.shape != (steps.shape[1],):
            raise ModelError(f"{path}: {kernel_name}_scale has the wrong shape")
        return Dense(_dequantize(steps, scale), bias, activation, scale)
    return Dense(_array(f, kernel_name, np.float32, 2, path), bias, activation)


def _read_exact(f, path: Path) -> ExactDecoder:
    attrs = f["exact"].attrs
    if str(attrs.get("arithmetic", "")) != ARITHMETIC:
        raise ModelError(
            f"{path}: decoder arithmetic {attrs.get('arithmetic')!r} is not known to this aec (it knows {ARITHMETIC}); "
            "upgrade aec"
        )
    for name in [f"exact/{i}/kernel" for i in range(int(attrs["exact_layers"]))] + ["exact/output_table"]:
        if name in f and f[name].dtype not in (np.int8, np.uint8):
            raise ModelError(f"{path}: {name} must be stored as 8-bit integers")
    layers = [
        ExactLayer(
            _array(f, f"exact/{i}/kernel", np.int8, 2, path),
            _array(f, f"exact/{i}/scale", np.float32, 1, path),
            _array(f, f"exact/{i}/offset", np.float32, 1, path),
        )
        for i in range(int(attrs["exact_layers"]))
    ]
    return ExactDecoder(layers, int(attrs["input_limit"]), _array(f, "exact/output_table", np.uint8, 1, path))


def read_model(path: str | os.PathLike, check=None) -> Model:
    """Read and verify a model file; ModelError on anything unexpected. `check(file, path)` vets the open file first."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: not a readable model file ({err})") from None
    try:
        with f:
            if check is not None:
                check(f, path)
            if f.attrs.get("format") != FORMAT:
                raise ModelError(f"{path}: not an aec model file")
            version = int(f.attrs.get("format_version", -1))
            if version not in READABLE_VERSIONS:
                raise ModelError(
                    f"{path}: model format version {version} is not supported "
                    f"(this aec reads {', '.join(map(str, READABLE_VERSIONS))})"
                )
            layers = {}
            for part in ("encoder", "decoder"):
                count = int(f[part].attrs["layers"]) if part in f else 0
                layers[part] = [_read_layer(f, f"{part}/{i}", version, path) for i in range(count)]
            stored, stored_decoder = (str(f.attrs.get(k, "")) for k in ("fingerprint", "decoder_fingerprint"))
            exact = _read_exact(f, path) if version >= 3 and "exact" in f else None
            model = Model(
                name=str(f.attrs["name"]),
                quality=int(f.attrs["quality"]),
                image_shape=(int(f.attrs["image_height"]), int(f.attrs["image_width"])),
                encoder=layers["encoder"],
                decoder=layers["decoder"],
                quant_step=_array(f, "quant/step", np.float32, 1, path),
                table_low=_array(f, "entropy/low", np.int32, 1, path),
                table_counts=_array(f, "entropy/counts", np.uint32, 2, path),
                metadata=json.loads(f.attrs.get("metadata", "{}")),
                exact=exact,
            )
    except (KeyError, ValueError, TypeError, OSError, RuntimeError) as err:  # RuntimeError: h5py, damaged heaps
        raise ModelError(f"{path}: malformed or damaged model file ({err})") from None
    if model.fingerprint_hex != stored or stored_decoder not in ("", model.decoder_fingerprint.hex()):
        raise ModelError(f"{path}: fingerprint mismatch; the model file is damaged or was edited")
    return model
