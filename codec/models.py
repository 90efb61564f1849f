"""Which model to use: shipped models by name or fingerprint, or a user's file."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from . import weights
from .errors import ModelError
from .levels import LEVELS, level
from .modelfile import Model, read_model
from .modelguard import read_untrusted

DEFAULT_MODEL = "mnist-q3"


def shipped_model_files() -> dict[str, Path]:
    """name -> path of every model shipped in the `weights` package."""
    return {path.stem: path for path in weights.model_files()}


def _is_shipped(path: Path, size: int) -> bool:
    """Whether `path` is, or is byte for byte, a shipped model file: those are trusted and read directly."""
    shipped = weights.model_files(weights.FOLDER) + weights.model_files(weights.LEGACY)
    if path in shipped:
        return True
    try:
        return any(s.stat().st_size == size and s.read_bytes() == path.read_bytes() for s in shipped)
    except OSError:
        return False


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Model:
    # Any other file may be hostile: modelguard reads it with limits, in a child process.
    return read_model(path) if _is_shipped(Path(path), size) else read_untrusted(path)


def load_model_file(path: str | os.PathLike) -> Model:
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        raise ModelError(f"{path}: cannot open model file ({err.strerror})") from None
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def quality_levels() -> dict[int, str]:
    """quality level -> name of the shipped model that codes its latents (levels.py)."""
    return {number: entry.model for number, entry in LEVELS.items()}


def resolve_model(spec: str | os.PathLike | Model | None = None, quality: int | None = None) -> Model:
    """A Model from None (the default), a shipped name, a model file path, or a shipped quality level."""
    if quality is not None:
        if spec is not None:
            raise ModelError("give a model or a quality level, not both")
        spec = level(quality).model
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
    """The decoder fingerprint a model file says it has (attributes only; read_model verifies them)."""
    import h5py  # here: the index answers without it, and h5py costs start-up time

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("decoder_fingerprint", "") or f.attrs.get("fingerprint", ""))
    except (OSError, ValueError):
        return ""


def _candidates(fingerprint: bytes) -> list[tuple[Path, bool]]:
    """(path, is legacy) of the shipped model files that say they decode files of this fingerprint,
    current ones first, without reading their weights.

    The index.json files answer without importing h5py (aec info's start-up);
    a file whose size differs from its index entry is asked directly.
    """
    wanted = fingerprint.hex()
    found = []
    for folder, legacy in ((weights.FOLDER, False), (weights.LEGACY, True)):
        recorded = weights.index(folder)
        for path in weights.model_files(folder):
            entry = recorded.get(path.stem, {})
            size = path.stat().st_size
            if entry.get("bytes") == size:
                stored = entry.get("decoder_fingerprint") or entry.get("fingerprint")
            else:
                stored = _stored_fingerprint(str(path), size)
            if stored == wanted:
                found.append((path, legacy))
    return found


def model_for_fingerprint(fingerprint: bytes, spec: str | os.PathLike | Model | None = None) -> Model:
    """The model that decodes a container: `spec` if given (must match), else a shipped one, legacy included."""
    if spec is not None:
        model = resolve_model(spec)
        if model.decoder_fingerprint != fingerprint:
            raise ModelError(
                f"model {model.name} ({model.decoder_fingerprint.hex()[:12]}) did not make this file "
                f"(it needs {fingerprint.hex()[:12]})"
            )
        return model
    for path, _ in _candidates(fingerprint):
        model = load_model_file(path)
        if model.decoder_fingerprint == fingerprint:
            return model
    raise ModelError(
        f"made with model {fingerprint.hex()[:12]}, which is not shipped with this aec; "
        "pass its model file with --model FILE, or upgrade aec"
    )


def shipped_min_bytes_per_image(fingerprint: bytes) -> float:
    """The fewest bytes the shipped model of this fingerprint spends on an image, from the index (no
    weights read); 0 when no shipped model says so."""
    wanted = fingerprint.hex()
    for folder in (weights.FOLDER, weights.LEGACY):
        for entry in weights.index(folder).values():
            if wanted in (entry.get("decoder_fingerprint"), entry.get("fingerprint")):
                return float(entry.get("min_bytes_per_image", 0.0))
    return 0.0


def shipped_name(fingerprint: bytes) -> str | None:
    """Name of the shipped model that says it decodes this fingerprint, or None (for display: nothing is decoded)."""
    candidates = _candidates(fingerprint)
    if not candidates:
        return None
    path, legacy = candidates[0]
    return f"{path.stem} (legacy)" if legacy else path.stem
