"""Training smoke run: a model trained for seconds packs and unpacks through the CLI."""

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from cli.main import app

pytest.importorskip("tensorflow")


def test_tiny_model_file_is_complete(tiny_model_file):
    model = codec.resolve_model(tiny_model_file)
    assert model.name == "tiny" and model.latents == 32
    assert model.metadata["training"]["images"] + model.metadata["training"]["val_images"] == 300
    assert {"tensorflow", "keras", "numpy"} <= set(model.metadata["versions"])
    # It learned something: an all-black guess scores about 10 dB on MNIST.
    assert model.metadata["validation"]["psnr_db"] > 11
    assert model.table_counts.shape[0] == 32 and np.all(model.table_counts[:, -1] > 0)


def test_tiny_model_packs_and_unpacks_through_cli(tmp_path, tiny_model_file, example_digits):
    runner = CliRunner()
    out = tmp_path / "t.aec"
    result = runner.invoke(app, ["pack", str(example_digits), "-o", str(out), "--model", str(tiny_model_file)])
    assert result.exception is None and result.exit_code == 0, result.output
    # The tiny model is not shipped: unpack must be told, and then works.
    result = runner.invoke(app, ["unpack", str(out), "-o", str(tmp_path / "a")])
    assert result.exit_code == 1 and "not shipped" in result.stderr
    result = runner.invoke(app, ["unpack", str(out), "-o", str(tmp_path / "b"), "--model", str(tiny_model_file)])
    assert result.exception is None and result.exit_code == 0, result.output
    assert len(list((tmp_path / "b").glob("*.png"))) == 48


@pytest.mark.slow
def test_train_command_on_mnist(tmp_path, mnist_dir):
    runner = CliRunner()
    out = tmp_path / "m.h5"
    result = runner.invoke(app, ["train", "--data", str(mnist_dir), "--epochs", "1", "--limit", "600",
                                 "--hidden", "64", "--out", str(out), "-q"])
    assert result.exception is None and result.exit_code == 0, result.output
    assert "PSNR" in result.stderr
    model = codec.resolve_model(out)
    assert model.metadata["training"]["data"] == str(mnist_dir)
    assert model.metadata["training"]["epochs"] == 1
    # The existing file is protected.
    result = runner.invoke(app, ["train", "--data", str(mnist_dir), "--out", str(out)])
    assert result.exit_code == 1 and "--force" in result.stderr
