"""Reading model files that may be hostile: a user's --model FILE, as opposed to the shipped ones.

HDF5 can point outside the file (external links, external raw storage,
virtual datasets: a FIFO hangs the reader, any local file can become
weights), declare arrays far larger than the file, and nest without end;
and libhdf5 itself can spin for minutes on a few damaged bytes. So:

  check_file()    before anything is read, refuses every link but a hard one,
                  storage outside the file, dtypes and filters the format does
                  not use, and declared sizes beyond fixed limits; bounds attributes
                  and the nesting of the metadata JSON.
  read_untrusted() reads in a child process under a time and memory limit; the
                  child checks and reads the file, and hands back plain arrays
                  (an .npz file, no pickles) from which the Model is rebuilt and
                  its fingerprint verified again.

Every refusal is a ModelError naming the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import ModelError
from .exact import ExactDecoder, ExactLayer
from .modelfile import Dense, Model, read_model

try:
    import resource
except ImportError:  # not on Windows: the time limit still holds there
    resource = None

# The shipped models declare 2 MiB of arrays in 45 objects, 3 deep, with 10 KiB of metadata:
# these limits leave a wide margin for bigger models and stay far below what hurts a machine.
MAX_DATASET_BYTES = 64 << 20
MAX_TOTAL_BYTES = 64 << 20
FILE_SIZE_FACTOR = 16  # declared arrays may exceed the file (gzip), but not by more than this
MAX_OBJECTS = 1024
MAX_DEPTH = 8
MAX_ATTRS = 32  # per object
MAX_ATTR_ELEMENTS = 16
MAX_ATTR_BYTES = 256 << 10
MAX_JSON_DEPTH = 32
MAX_LAYERS = 64  # the `layers` and `exact_layers` counts, which the reader loops over
DTYPES = {np.dtype(t).newbyteorder("<") for t in ("int8", "uint8", "int32", "uint32", "float32")}
MAX_NDIM = 2

READ_SECONDS = 10.0
READ_MEMORY = 1 << 30  # address space of the child: Python, numpy and h5py take about 160 MiB
READ_OUTPUT = 4 * MAX_TOTAL_BYTES + (1 << 20)  # the arrays it hands back, as float32 at most
_CHILD = f"import sys; from {__name__} import _child; sys.exit(_child(*sys.argv[1:3]))"


def _json_depth(text: str) -> int:
    """How deeply `text` nests JSON arrays and objects (strings skipped), without recursion."""
    brackets = re.sub(r"[^\[\]{}]", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _check_attrs(obj, where: str, path: Path) -> None:
    import h5py

    count = h5py.h5a.get_num_attrs(obj)
    if count > MAX_ATTRS:
        raise ModelError(f"{path}: {where} has {count} attributes (at most {MAX_ATTRS})")
    holder = h5py.Group(obj) if isinstance(obj, h5py.h5g.GroupID) else h5py.Dataset(obj)
    for index in range(count):
        attr = h5py.h5a.open(obj, index=index)
        name = attr.name.decode(errors="replace").encode("unicode_escape").decode()
        dtype, shape = attr.dtype, attr.shape or ()
        elements = int(np.prod(shape, dtype=object))
        is_string = h5py.check_string_dtype(dtype) is not None
        if (dtype.kind not in "iufbS" and not is_string) or elements > MAX_ATTR_ELEMENTS:
            raise ModelError(f"{path}: attribute {name!r} of {where} has an unexpected type or shape")
        if dtype.itemsize * elements > MAX_ATTR_BYTES:
            raise ModelError(f"{path}: attribute {name!r} of {where} is too large")
        if not is_string and name not in ("layers", "exact_layers"):
            continue
        value = holder.attrs[attr.name]  # by its stored name, bytes
        if is_string:
            size = sum(len(v) for v in np.ravel(np.asarray(value, dtype=object)))
            if size > MAX_ATTR_BYTES:
                raise ModelError(f"{path}: attribute {name!r} of {where} is too large ({size} bytes)")
            if name == "metadata" and _json_depth(str(value)) > MAX_JSON_DEPTH:
                raise ModelError(f"{path}: metadata nests deeper than {MAX_JSON_DEPTH} levels")
        elif not (np.ndim(value) == 0 and 0 <= int(value) <= MAX_LAYERS):
            raise ModelError(f"{path}: {where} declares {value} layers (at most {MAX_LAYERS})")


def _check_dataset(dataset, where: str, path: Path) -> int:
    """The bytes `dataset` declares, after refusing outside storage, unknown types and filters."""
    import h5py

    plist = dataset.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL or layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise ModelError(f"{path}: {where} is a virtual dataset, which model files do not use")
    if plist.get_external_count():
        raise ModelError(f"{path}: {where} keeps its data outside the model file, which model files do not use")
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in (h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32):
            raise ModelError(f"{path}: {where} uses HDF5 filter {code}, which aec does not read")
    dtype = dataset.dtype
    if dtype.newbyteorder("<") not in DTYPES or dtype.kind not in "iuf":
        raise ModelError(f"{path}: {where} has type {dtype}, which model files do not use")
    shape = dataset.shape or ()
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    chunk = plist.get_chunk() if layout == h5py.h5d.CHUNKED else ()
    chunk_bytes = int(np.prod(chunk, dtype=object)) * dtype.itemsize
    if len(shape) > MAX_NDIM or max(declared, chunk_bytes) > MAX_DATASET_BYTES:
        raise ModelError(f"{path}: {where} declares {shape} {dtype} values, beyond the limits for a model file")
    return declared


def check_file(f, path: Path) -> None:
    """Refuse what the format never holds, from the file's structure alone (no array is read).

    Walks the links itself, one level at a time, so that no link but a hard one is ever followed."""
    import h5py

    size = os.path.getsize(path)
    total, objects = 0, 0
    seen = {h5py.h5o.get_info(f.id).addr}
    _check_attrs(f.id, "/", path)
    stack = [(f.id, "", 0)]
    while stack:
        group, where, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise ModelError(f"{path}: {where} nests deeper than {MAX_DEPTH} groups")
        objects += len(group)
        if objects > MAX_OBJECTS:
            raise ModelError(f"{path}: more than {MAX_OBJECTS} objects")
        for name in list(group):
            here = f"{where}/{name.decode(errors='replace').encode('unicode_escape').decode()}"
            if b"/" in name or name in (b"", b"."):
                raise ModelError(f"{path}: bad link name {here!r}")
            kind = group.links.get_info(name).type
            if kind != h5py.h5l.TYPE_HARD:
                what = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}
                raise ModelError(
                    f"{path}: {here} is {what.get(kind, 'a user-defined link')}, which model files do not use"
                )
            obj = h5py.h5o.open(group, name)
            info = h5py.h5o.get_info(obj)
            if info.addr in seen:
                raise ModelError(f"{path}: {here} links to an object a second time")
            seen.add(info.addr)
            _check_attrs(obj, here, path)
            if info.type == h5py.h5o.TYPE_GROUP:
                stack.append((obj, here, depth + 1))
            elif info.type == h5py.h5o.TYPE_DATASET:
                total += _check_dataset(obj, here, path)
            else:
                raise ModelError(f"{path}: {here} is neither a group nor a dataset")
    if total > min(MAX_TOTAL_BYTES, FILE_SIZE_FACTOR * size + (64 << 10)):
        raise ModelError(f"{path}: declares {total} bytes of arrays in a file of {size} bytes; refused")


def read_checked(path: str | os.PathLike) -> Model:
    """check_file, then read_model: in this process, without a time or memory limit (the child's work)."""
    return read_model(path, check=check_file)


def _arrays(model: Model) -> dict[str, np.ndarray]:
    arrays = {}
    for part, layers in (("encoder", model.encoder), ("decoder", model.decoder)):
        for i, layer in enumerate(layers):
            arrays[f"{part}.{i}.kernel"], arrays[f"{part}.{i}.bias"] = layer.kernel, layer.bias
            if layer.kernel_scale is not None:
                arrays[f"{part}.{i}.kernel_scale"] = layer.kernel_scale
    arrays |= {"quant.step": model.quant_step, "entropy.low": model.table_low, "entropy.counts": model.table_counts}
    if model.exact is not None:
        arrays |= {name.replace("/", "."): array for name, array in model.exact.canonical_arrays()}
    return arrays


def _spec(model: Model) -> dict:
    return {
        "name": model.name,
        "quality": int(model.quality),
        "image_shape": list(model.image_shape),
        "metadata": model.metadata,
        "activations": {
            "encoder": [layer.activation for layer in model.encoder],
            "decoder": [layer.activation for layer in model.decoder],
        },
        "exact": None if model.exact is None else [len(model.exact.layers), int(model.exact.input_limit)],
        "fingerprint": model.fingerprint_hex,
    }


def _rebuild(spec: dict, arrays, path: str) -> Model:
    """The Model the child read, validated and fingerprinted again here."""

    def layers(part: str) -> list[Dense]:
        return [
            Dense(
                arrays[f"{part}.{i}.kernel"],
                arrays[f"{part}.{i}.bias"],
                activation,
                arrays.get(f"{part}.{i}.kernel_scale"),
            )
            for i, activation in enumerate(spec["activations"][part])
        ]

    exact = None
    if spec["exact"] is not None:
        count, input_limit = spec["exact"]
        exact = ExactDecoder(
            [ExactLayer(*(arrays[f"exact.{i}.{n}"] for n in ("kernel", "scale", "offset"))) for i in range(count)],
            int(input_limit),
            arrays["exact.output_table"],
        )
    model = Model(
        name=str(spec["name"]),
        quality=int(spec["quality"]),
        image_shape=tuple(int(n) for n in spec["image_shape"]),
        encoder=layers("encoder"),
        decoder=layers("decoder"),
        quant_step=arrays["quant.step"],
        table_low=arrays["entropy.low"],
        table_counts=arrays["entropy.counts"],
        metadata=spec["metadata"],
        exact=exact,
    )
    if model.fingerprint_hex != spec["fingerprint"]:
        raise ModelError(f"{path}: fingerprint mismatch; the model file is damaged or was edited")
    return model


def _limit_child() -> None:
    if resource is None:
        return
    limits = [
        (resource.RLIMIT_AS, READ_MEMORY),
        (resource.RLIMIT_FSIZE, READ_OUTPUT),
        (resource.RLIMIT_CPU, int(READ_SECONDS) + 5),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        resource.setrlimit(which, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def _child(path: str, out: str) -> int:
    """In the child: exit 0 with OUT written, else 3 with one line on stderr."""
    _limit_child()
    try:
        model = read_checked(path)
        arrays = _arrays(model)
        arrays["spec"] = np.frombuffer(json.dumps(_spec(model)).encode(), np.uint8)
        with open(out, "wb") as file:
            np.savez(file, **arrays)
        return 0
    except ModelError as err:
        message = str(err)
    except MemoryError:
        message = f"{path}: reading the model file needs more than {READ_MEMORY >> 20} MiB of memory; refused"
    except Exception as err:  # anything libhdf5 or h5py can throw at a damaged file
        message = f"{path}: malformed or damaged model file ({type(err).__name__})"
    print(" ".join(message.split()), file=sys.stderr)
    return 3


def read_untrusted(path: str | os.PathLike) -> Model:
    """Read a model file that may be hostile: checked, and parsed in a child process with a time and memory limit."""
    import subprocess  # here: 4 ms of every command's start-up, and only a user's model file needs it

    path = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ModelError(f"{path}: not a regular file")
    except OSError as err:
        raise ModelError(f"{path}: cannot open model file ({err.strerror})") from None
    # One thread per library: OpenBLAS reserves address space per thread, which the memory limit counts.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="aec-model-") as folder:
        out, errors = Path(folder) / "model.npz", Path(folder) / "errors.txt"
        with open(errors, "wb") as stderr:
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, path, str(out)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                    timeout=READ_SECONDS,
                )
            except subprocess.TimeoutExpired:
                raise ModelError(
                    f"{path}: reading the model file took longer than {READ_SECONDS:g} s; it is damaged or hostile"
                ) from None
        if done.returncode != 0:
            with open(errors, "rb") as file:
                file.seek(max(0, errors.stat().st_size - 2000))
                lines = file.read().decode(errors="replace").strip().splitlines()
            if done.returncode == 3 and lines:
                raise ModelError(lines[-1])
            how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
            raise ModelError(f"{path}: the model file reader failed ({how}); refused")
        if out.stat().st_size > READ_OUTPUT:
            raise ModelError(f"{path}: the model file reader handed back too much; refused")
        try:
            with np.load(out, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            spec = arrays.pop("spec").tobytes().decode()
            if _json_depth(spec) > MAX_JSON_DEPTH + 4:
                raise ModelError(f"{path}: the model file reader handed back nonsense; refused")
            spec = json.loads(spec)
            return _rebuild(spec, arrays, path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{path}: malformed model file ({err})") from None
