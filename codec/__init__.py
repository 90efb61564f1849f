"""aec: a learned lossy codec for small grayscale images (MNIST-style digits).

    import aec
    data = aec.encode(images)          # uint8 [N, 28, 28] -> .aec bytes
    data = aec.encode(images, effort=1)  # slower; better pictures for the same bytes
    images = aec.decode(data)          # .aec bytes -> uint8 [N, 28, 28]
    aec.pack(["digits/"], "digits.aec")
    aec.unpack("digits.aec", "out/")

Never imports TensorFlow; only aec.training does.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import AecError, ContainerError, DataError, InputError, ModelError, OutputError

# Each public name and the module that defines it, imported at first use (PEP 562): a command such as
# `aec list` or `aec unpack NAME` then loads only the modules it runs, not pack's, cat's and the dataset's.
_LAZY = {
    "Dataset": "dataset",
    "open": "dataset",
    "decode": "decoding",
    "Member": "fileinfo",
    "info": "fileinfo",
    "list_members": "fileinfo",
    "CatResult": "joining",
    "cat": "joining",
    "DEFAULT_MODEL": "models",
    "resolve_model": "models",
    "PackResult": "packing",
    "encode": "packing",
    "pack": "packing",
    "EFFORTS": "search",
    "UnpackResult": "unpacking",
    "unpack": "unpacking",
    "verify": "unpacking",
}


def __getattr__(name: str):
    if name not in _LAZY:
        try:  # a submodule, as `import aec` has always made `aec.container` and the others available
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'aec' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "encode",
    "decode",
    "pack",
    "unpack",
    "info",
    "verify",
    "resolve_model",
    "DEFAULT_MODEL",
    "EFFORTS",
    "list_members",
    "cat",
    "CatResult",
    "open",
    "Dataset",
    "Member",
    "PackResult",
    "UnpackResult",
    "AecError",
    "ContainerError",
    "DataError",
    "InputError",
    "ModelError",
    "OutputError",
]
