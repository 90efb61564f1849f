"""aec: a learned lossy codec for small grayscale images (MNIST-style digits).

    import aec
    data = aec.encode(images)          # uint8 [N, 28, 28] -> .aec bytes
    data = aec.encode(images, effort=1)  # slower; better pictures for the same bytes
    images = aec.decode(data)          # .aec bytes -> uint8 [N, 28, 28]
    aec.pack(["digits/"], "digits.aec")
    aec.unpack("digits.aec", "out/")

Never imports TensorFlow; only aec.training does.
"""

from ._version import __version__
from .dataset import Dataset, open
from .decoding import decode
from .errors import AecError, ContainerError, DataError, InputError, ModelError, OutputError
from .fileinfo import Member, info, list_members
from .joining import CatResult, cat
from .models import DEFAULT_MODEL, resolve_model
from .packing import PackResult, encode, pack
from .search import EFFORTS
from .unpacking import UnpackResult, unpack, verify

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
