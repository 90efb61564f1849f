"""Which model to use: shipped models by name or fingerprint, or a user's file."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from . import weights
from .errors import ModelError
from .modelfile import Model, read_model

DEFAULT_MODEL = "mnist-q3"


def shipped_model_files() -> dict[str, Path]:
    """name -> path of every model shipped in the `weights` package."""
    return {path.stem: path for path in weights.model_files()}


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Model:
    return read_model(path)


def load_model_file(path: str | os.PathLike) -> Model:
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        raise ModelError(f"{path}: cannot open model file ({err.strerror})") from None
    return _load(str(path.resolve()), stat.st_mtime_ns)


def quality_levels() -> dict[int, str]:
    """quality level -> name of the shipped model at that level (from the index: no weights read)."""
    recorded = weights.index()
    return {int(entry["quality"]): name for name, entry in sorted(recorded.items()) if "quality" in entry}


def resolve_model(spec: str | os.PathLike | Model | None = None, quality: int | None = None) -> Model:
    """A Model from None (the default), a shipped name, a model file path, or a shipped quality level."""
    if quality is not None:
        if spec is not None:
            raise ModelError("give a model or a quality level, not both")
        levels = quality_levels()
        if quality not in levels:
            shipped = ", ".join(map(str, sorted(levels))) or "none"
            raise ModelError(f"quality {quality} is not shipped (levels: {shipped})")
        spec = levels[quality]
    if isinstance(spec, Model):
        return spec
    shipped = shipped_model_files()
    name = DEFAULT_MODEL if spec is None else str(spec)
    if name in shipped:
        return load_model_file(shipped[name])
    if spec is not None and (Path(name).is_file() or os.sep in name or name.endswith(".h5")):
        return load_model_file(name)
    available = ", ".join(sorted(shipped)) or "none installed"
    raise ModelError(f"{name}: no such model (shipped: {available}; or give a model file path)")


@functools.lru_cache(maxsize=32)
def _stored_fingerprint(path: str, size: int) -> str:
    """The fingerprint a model file says it has (attribute only; read_model verifies it)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("fingerprint", ""))
    except (OSError, ValueError):
        return ""


def _candidates(fingerprint: bytes) -> list[Path]:
    """Shipped model files that say they have this fingerprint, without reading their weights.

    weights/index.json answers without importing h5py (aec info's start-up);
    a file whose size differs from its index entry is asked directly.
    """
    wanted, recorded = fingerprint.hex(), weights.index()
    found = []
    for name, path in shipped_model_files().items():
        entry = recorded.get(name, {})
        size = path.stat().st_size
        stored = entry.get("fingerprint") if entry.get("bytes") == size else _stored_fingerprint(str(path), size)
        if stored == wanted:
            found.append(path)
    return found


def model_for_fingerprint(fingerprint: bytes, spec: str | os.PathLike | Model | None = None) -> Model:
    """The model that made a container: `spec` if given (must match), else the shipped one."""
    if spec is not None:
        model = resolve_model(spec)
        if model.fingerprint != fingerprint:
            raise ModelError(
                f"model {model.name} ({model.fingerprint_hex[:12]}) did not make this file "
                f"(it needs {fingerprint.hex()[:12]})"
            )
        return model
    for path in _candidates(fingerprint):
        model = load_model_file(path)
        if model.fingerprint == fingerprint:
            return model
    raise ModelError(
        f"made with model {fingerprint.hex()[:12]}, which is not shipped with this aec; "
        "pass its model file with --model FILE"
    )


def shipped_name(fingerprint: bytes) -> str | None:
    """Name of the shipped model that says it has this fingerprint, or None (for display: nothing is decoded)."""
    candidates = _candidates(fingerprint)
    return candidates[0].stem if candidates else None
