import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def example_digits() -> Path:
    """48 MNIST test digits as PNG files (the quick-start examples)."""
    return EXAMPLES


@pytest.fixture(scope="session")
def example_images() -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p)) for p in sorted(EXAMPLES.glob("*.png"))])


@pytest.fixture(scope="session")
def train_fixture() -> np.ndarray:
    """300 MNIST training digits, uint8 [300, 28, 28]."""
    with np.load(FIXTURES / "mnist-train-300.npz") as npz:
        return npz["images"]


@pytest.fixture(scope="session")
def shipped_model():
    import aec

    return aec.resolve_model()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST IDX folder from $AEC_DATA (CI sets it to ../shared/data/mnist)."""
    place = os.environ.get("AEC_DATA")
    if not place or not Path(place).is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide MNIST: AEC_DATA={place!r} is not a folder")
        pytest.skip("AEC_DATA is not set to the MNIST folder")
    return Path(place)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, train_fixture) -> Path:
    """A model trained for seconds on the 300-image fixture, exported to a model file."""
    pytest.importorskip("tensorflow")
    from aec.training.loop import TrainConfig
    from aec.training.model import Architecture
    from aec.training.run import train_and_export

    out = tmp_path_factory.mktemp("tiny") / "tiny.h5"
    train_and_export(
        out,
        images=train_fixture,
        name="tiny",
        quality=1,
        arch=Architecture(hidden=[64]),
        config=TrainConfig(epochs=10, batch_size=25, lmbda=5000),
        log=lambda line: None,
    )
    return out
