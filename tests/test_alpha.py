"""Images with alpha come back as the digit they show: the alpha rule of images.py, through pack and unpack.

Uniform alpha (every pixel the same, as when a whole image is saved semi-transparent) is ignored; other
alpha is resolved by whichever of composited-on-black, composited-on-white and the colours as they are
looks like a digit on a plain background; a dark digit on white is then inverted as always.
"""

import numpy as np
import pytest
from PIL import Image

import aec
from aec.images import read_gray

DIGITS = 8  # MNIST test digits per case
MIN_PSNR = 18.0  # dB against the grayscale original; composited on the wrong shade gives about 10


def rgba(gray: np.ndarray, alpha) -> Image.Image:
    return Image.fromarray(
        np.stack([gray, gray, gray, np.broadcast_to(np.asarray(alpha, np.uint8), gray.shape)], axis=-1), "RGBA"
    )


def la(gray: np.ndarray, alpha) -> Image.Image:
    return Image.fromarray(np.stack([gray, np.broadcast_to(np.asarray(alpha, np.uint8), gray.shape)], axis=-1), "LA")


def palette(gray: np.ndarray, transparent: int) -> tuple[Image.Image, dict]:
    """A palette image of `gray` (grey ramp palette) whose entry `transparent` is transparent."""
    img = Image.fromarray(gray, "L").convert("P")
    assert img.getpalette()[3 * transparent : 3 * transparent + 3] == [transparent] * 3
    return img, {"transparency": transparent}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def white_on_black(digit):
    return digit


def black_on_white(digit):
    return 255 - digit


CASES = {
    # name: (the image file made from a white-on-black digit, what it shows)
    "rgba-200-white-on-black": (lambda d: (rgba(d, 200), {}), white_on_black),
    "rgba-255-white-on-black": (lambda d: (rgba(d, 255), {}), white_on_black),
    "rgba-200-black-on-white": (lambda d: (rgba(255 - d, 200), {}), black_on_white),
    "rgba-255-black-on-white": (lambda d: (rgba(255 - d, 255), {}), black_on_white),
    "la-200-white-on-black": (lambda d: (la(d, 200), {}), white_on_black),
    "la-200-black-on-white": (lambda d: (la(255 - d, 200), {}), black_on_white),
    # Partial alpha that varies: opaque ink, a semi-transparent background.
    "rgba-ink-opaque-white-on-black": (
        lambda d: (rgba(d, np.where(d > 0, 255, 200).astype(np.uint8)), {}),
        white_on_black,
    ),
    "rgba-ink-opaque-black-on-white": (
        lambda d: (rgba(255 - d, np.where(d > 0, 255, 200).astype(np.uint8)), {}),
        black_on_white,
    ),
    # Alpha is the digit: white ink, or black ink, over a transparent background.
    "la-white-ink-alpha-digit": (lambda d: (la(np.full_like(d, 255), d), {}), white_on_black),
    "rgba-black-ink-alpha-digit": (lambda d: (rgba(np.zeros_like(d), d), {}), black_on_white),
    "palette-black-transparent": (lambda d: palette(d, 0), white_on_black),
    "palette-white-transparent": (lambda d: palette(255 - d, 255), black_on_white),
}


@pytest.fixture(scope="module")
def digits(train_fixture) -> np.ndarray:
    return train_fixture[:DIGITS]


@pytest.mark.parametrize("case", list(CASES))
def test_alpha_images_pack_and_unpack_as_the_digit_they_show(tmp_path, digits, case):
    make, shown = CASES[case]
    src = tmp_path / "src"
    src.mkdir()
    for i, digit in enumerate(digits):
        img, options = make(digit)
        img.save(src / f"{i}.png", **options)
    aec.pack([src], tmp_path / "a.aec")
    aec.unpack(tmp_path / "a.aec", tmp_path / "out")
    for i, digit in enumerate(digits):
        back = np.asarray(Image.open(tmp_path / "out" / f"{i}.png"))
        assert psnr(back, shown(digit)) >= MIN_PSNR, (case, i, psnr(back, shown(digit)))


def test_uniform_alpha_is_ignored_and_all_transparent_is_blank(tmp_path, digits):
    digit = digits[0]
    for alpha in (1, 128, 200, 254, 255):
        rgba(digit, alpha).save(tmp_path / "u.png")
        assert np.array_equal(read_gray(tmp_path / "u.png")[0], digit), alpha
    rgba(digit, 0).save(tmp_path / "t.png")
    assert not read_gray(tmp_path / "t.png")[0].any()


def test_a_large_image_with_alpha_is_judged_on_a_sample(tmp_path):
    """A 2000x2000 white '1' on a transparent background: composited on black, like a small one."""
    gray = np.full((2000, 2000), 255, np.uint8)
    alpha = np.zeros((2000, 2000), np.uint8)
    alpha[400:1600, 900:1100] = 255
    rgba(gray, alpha).save(tmp_path / "big.png")
    array, _ = read_gray(tmp_path / "big.png")
    assert array[0, 0] == 0 and array[1000, 1000] == 255
