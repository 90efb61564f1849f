"""28x28 grayscale images that are not MNIST digits, for testing the quality guarantee.

Letters rendered with a font, geometric shapes, noise, gradients and
photographs cut to 28x28 (scikit-image's bundled sample images, when it is
installed), each kind white-on-black and black-on-white. A fixed seed gives
the same images every time.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 28
PHOTOS = ("camera", "coins", "moon", "astronaut", "text", "page", "clock", "horse")


def letters(rng: np.random.Generator, count: int) -> np.ndarray:
    try:
        font = ImageFont.load_default(size=int(rng.integers(16, 24)))
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    out = []
    for _ in range(count):
        image = Image.new("L", (SIZE, SIZE), 0)
        text = "".join(chr(int(rng.integers(0x41, 0x5B))) for _ in range(int(rng.integers(1, 3))))
        ImageDraw.Draw(image).text((int(rng.integers(0, 8)), int(rng.integers(0, 6))), text, fill=255, font=font)
        out.append(np.asarray(image))
    return np.stack(out)


def shapes(rng: np.random.Generator, count: int) -> np.ndarray:
    out = []
    for i in range(count):
        image = Image.new("L", (SIZE, SIZE), 0)
        draw = ImageDraw.Draw(image)
        x0, y0 = (int(v) for v in rng.integers(0, 12, 2))
        x1, y1 = (int(v) for v in rng.integers(14, 28, 2))
        shade = int(rng.integers(128, 256))
        kind = i % 4
        if kind == 0:
            draw.rectangle([x0, y0, x1, y1], outline=shade, width=int(rng.integers(1, 4)))
        elif kind == 1:
            draw.ellipse([x0, y0, x1, y1], fill=shade)
        elif kind == 2:
            draw.polygon([tuple(int(v) for v in rng.integers(0, 28, 2)) for _ in range(3)], fill=shade)
        else:
            for _ in range(3):
                draw.line([tuple(int(v) for v in rng.integers(0, 28, 2)) for _ in range(2)], fill=shade, width=2)
        out.append(np.asarray(image))
    return np.stack(out)


def noise(rng: np.random.Generator, count: int) -> np.ndarray:
    uniform = rng.integers(0, 256, (count // 2, SIZE, SIZE))
    gaussian = np.clip(rng.normal(128, 50, (count - count // 2, SIZE, SIZE)), 0, 255)
    return np.concatenate([uniform, gaussian]).astype(np.uint8)


def gradients(rng: np.random.Generator, count: int) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / (SIZE - 1)
    out = []
    for i in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        if i % 2:
            field = np.hypot(x - rng.uniform(0, 1), y - rng.uniform(0, 1))
        else:
            field = x * np.cos(angle) + y * np.sin(angle)
        field = (field - field.min()) / max(np.ptp(field), 1e-9)
        out.append(np.round(255 * field))
    return np.stack(out).astype(np.uint8)


def photos(rng: np.random.Generator, count: int) -> np.ndarray:
    """Crops and shrunk views of scikit-image's sample photographs; empty without scikit-image."""
    try:
        from skimage import data  # optional: a dev extra (tests), not a product dependency
    except ImportError:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    sources = []
    for name in PHOTOS:
        try:
            picture = np.asarray(getattr(data, name)())
        except Exception:  # a sample that must be downloaded, on a machine without network
            continue
        if picture.ndim == 3:
            picture = np.asarray(Image.fromarray(picture[..., :3].astype(np.uint8)).convert("L"))
        sources.append(picture.astype(np.uint8))
    out = []
    for i in range(count if sources else 0):
        picture = sources[i % len(sources)]
        if i % 3 == 0:
            out.append(np.asarray(Image.fromarray(picture).resize((SIZE, SIZE), Image.Resampling.LANCZOS)))
        else:
            top = int(rng.integers(0, picture.shape[0] - SIZE))
            left = int(rng.integers(0, picture.shape[1] - SIZE))
            out.append(picture[top : top + SIZE, left : left + SIZE])
    return np.stack(out) if out else np.zeros((0, SIZE, SIZE), np.uint8)


KINDS = {"letters": letters, "shapes": shapes, "noise": noise, "gradients": gradients, "photos": photos}


def nondigit_images(per_kind: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """kind -> uint8 [n, 28, 28]: per_kind images of each kind, half of them black-on-white."""
    rng = np.random.default_rng(seed)
    out = {}
    for kind, make in KINDS.items():
        images = make(rng, per_kind)
        images[1::2] = 255 - images[1::2]
        out[kind] = images
    return out
