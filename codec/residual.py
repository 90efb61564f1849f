"""The residual coder: pixels within +-N of the originals (N = 0: lossless), coded after the latents.

Each coded image's pixels are quantised to bins of width 2N+1 anchored at 0
(bin k is the value k(2N+1), clipped to 255), so background zeros stay
exact and every pixel is within N of the original. The bins are
entropy-coded in raster order with adaptive context modelling, conditioned
on the decoder's picture of the image (the prediction) and on the
already-coded neighbours W, N, NW, NE:

- a class symbol (8 value ranges, CLASS_EDGES), its table chosen by the
  prediction and the four neighbours;
- for classes other than 0, the bin's offset within its class, its table
  chosen by a coarser context.

The tables are counts that start empty and learn as the chunk is coded; they
are updated after each row of pixels, for all images of the chunk at once,
so coding is vectorised across images: 28 rows x 28 columns of NumPy steps,
whatever the chunk size. Probabilities handed to constriction are integer
counts as float64 (exact), so every machine codes the same bytes.
Specified in docs/FORMAT.md ("Residual coder 1"); changing anything here
changes the format.
"""

from __future__ import annotations

import numpy as np

CLASS_EDGES = np.array([1, 16, 64, 128, 192, 244, 252])  # class c holds values [lower[c], lower[c+1])
CLASSES = len(CLASS_EDGES) + 1
MAX_OFFSETS = 64  # the widest class (64..127, 128..191) holds 64 lossless values
PART = 8  # an offset is coded as two symbols of up to 8: offset // 8, then offset % 8
NEIGHBOUR_EDGES = np.array([1, 64, 160, 252])  # 5 levels for W, N, NW, NE
PREDICTION_EDGES = np.array([1, 32, 64, 96, 128, 160, 192, 224, 250])  # 10 levels
COARSE_EDGES = np.array([1, 64, 128, 192, 250])  # 6 levels (offset context)
CLASS_CONTEXTS = 10 * 5**4
OFFSET_CONTEXTS = 6 * 5  # coarse prediction level x level of the brighter of W and N


def _levels(edges: np.ndarray) -> np.ndarray:
    """A 256-entry lookup: value -> its level among `edges`."""
    return np.searchsorted(edges, np.arange(256), side="right").astype(np.int64)


NEIGHBOUR_LEVEL = _levels(NEIGHBOUR_EDGES)
PREDICTION_LEVEL = _levels(PREDICTION_EDGES)
COARSE_LEVEL = _levels(COARSE_EDGES)
CLASS_OF_VALUE = _levels(CLASS_EDGES)


def bins(max_error: int) -> int:
    """How many bins cover 0..255 for pixels within +-max_error."""
    return (255 + max_error) // (2 * max_error + 1) + 1


def quantise(images: np.ndarray, max_errors: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W] -> the pixels the residual coder gives back for each image's max error."""
    width = (2 * max_errors.astype(np.int64) + 1).reshape(-1, 1, 1)
    k = (images.astype(np.int64) + width // 2) // width
    return np.minimum(k * width, 255).astype(np.uint8)


class _Plan:
    """Per max error present in the chunk: each bin's class and offset, and which classes and offsets
    can occur (the others get probability 0)."""

    def __init__(self, max_errors: np.ndarray):
        self.errors = np.unique(max_errors)
        self.which = np.searchsorted(self.errors, max_errors)  # per image: its max error's row below
        n = len(self.errors)
        most = bins(int(self.errors.min()))
        self.bin_class = np.zeros((n, most), np.int64)
        self.bin_offset = np.zeros((n, most), np.int64)
        self.first_bin = np.zeros((n, CLASSES), np.int64)
        self.class_mask = np.zeros((n, CLASSES), np.float64)
        self.high_mask = np.zeros((n, CLASSES, PART), np.float64)  # which offset // 8 can occur
        self.low_mask = np.zeros((n, CLASSES, PART, PART), np.float64)  # ... and offset % 8 after it
        for i, e in enumerate(self.errors.tolist()):
            count = bins(e)
            classes = CLASS_OF_VALUE[np.minimum(np.arange(count) * (2 * e + 1), 255)]
            for c in range(CLASSES):
                members = np.flatnonzero(classes == c)
                if members.size:
                    self.first_bin[i, c] = members[0]
                    self.class_mask[i, c] = 1
                    for j in range(members.size):
                        self.high_mask[i, c, j // PART] = 1
                        self.low_mask[i, c, j // PART, j % PART] = 1
            self.bin_class[i, :count] = classes
            self.bin_offset[i, :count] = np.arange(count) - self.first_bin[i, classes]
        self.width = 2 * max_errors.astype(np.int64) + 1


class _Tables:
    """The adaptive tables of one chunk, one set per max error: 2 x count + 1 for each possible symbol
    (Krichevsky-Trofimov; impossible symbols stay 0), as float64 rows ready for constriction. Both
    sides update them the same way, once per wave."""

    def __init__(self, plan: _Plan):
        self.classes = np.repeat(plan.class_mask[:, None, :], CLASS_CONTEXTS, axis=1).reshape(-1, CLASSES)
        self.highs = np.repeat(plan.high_mask[:, None], OFFSET_CONTEXTS, axis=1).reshape(-1, PART)
        self.lows = plan.low_mask.reshape(-1, PART).copy()

    def update(self, class_keys, classes, high_keys, highs, low_keys, lows) -> None:
        for table, flat in (
            (self.classes, class_keys * CLASSES + classes),
            (self.highs, high_keys * PART + highs),
            (self.lows, low_keys * PART + lows),
        ):
            cells = table.reshape(-1)
            if flat.size > cells.size // 64:
                cells += 2.0 * np.bincount(flat, minlength=cells.size)
            elif flat.size:
                np.add.at(cells, flat, 2.0)  # cheaper than a pass over the whole table for a few symbols


def waves(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The coding order: wave t holds the pixels (r, c) with 2r + c = t, by rising r. A pixel's
    neighbours W, NW, N and NE all lie on earlier waves, so a whole wave is coded at once."""
    out = []
    for t in range(2 * (height - 1) + width):
        r = np.arange(max(0, -(-(t - width + 1) // 2)), min(height - 1, t // 2) + 1)
        out.append((r, t - 2 * r))
    return out


def _code(coder, categorical, predictions: np.ndarray, max_errors: np.ndarray, images: np.ndarray | None):
    """Code (images given) or decode (images None) the residual; returns the coded pixels uint8 [n, H, W]."""
    n, height, width = predictions.shape
    plan = _Plan(max_errors)
    tables = _Tables(plan)
    encoding = images is not None
    # Pixel-major layouts [H, W, n]: a wave reads contiguous runs of values across the images.
    if encoding:
        k_all = (np.moveaxis(images, 0, -1).astype(np.int64) + plan.width // 2) // plan.width
    coded = np.zeros((height, width, n), np.uint8)
    # Neighbour levels with a zero border (outside the image is background).
    level = np.zeros((height + 1, width + 2, n), np.int64)
    which = np.moveaxis(np.broadcast_to(plan.which, (height, width, n)), -1, -1)
    prediction_part = np.moveaxis(PREDICTION_LEVEL[predictions], 0, -1) * 5**4 + which * CLASS_CONTEXTS
    coarse_part = (np.moveaxis(COARSE_LEVEL[predictions], 0, -1) * 5 + which * OFFSET_CONTEXTS) * CLASSES
    for r, c in waves(height, width):
        west, north = level[r + 1, c].ravel(), level[r, c + 1].ravel()
        class_keys = prediction_part[r, c].ravel() + west * 125 + north * 25
        class_keys += level[r, c].ravel() * 5 + level[r, c + 2].ravel()
        if encoding:
            k = k_all[r, c].ravel()
            which_here = which[r, c].ravel()
            classes = plan.bin_class[which_here, k]
            coder.encode(classes.astype(np.int32), categorical, tables.classes[class_keys])
        else:
            classes = coder.decode(categorical, tables.classes[class_keys]).astype(np.int64)
        inked = np.flatnonzero(classes)
        ink_classes = classes[inked]
        ink_which = plan.which[inked % n]
        high_keys = coarse_part[r, c].ravel()[inked] + np.maximum(west[inked], north[inked]) * CLASSES
        high_keys += ink_classes
        if encoding:
            offsets = plan.bin_offset[ink_which, k[inked]]
            highs, lows = offsets >> 3, offsets & 7
        low_keys = (ink_which * CLASSES + ink_classes) * PART
        if len(inked) and encoding:
            coder.encode(highs.astype(np.int32), categorical, tables.highs[high_keys])
            low_keys += highs
            coder.encode(lows.astype(np.int32), categorical, tables.lows[low_keys])
        elif len(inked):
            highs = coder.decode(categorical, tables.highs[high_keys]).astype(np.int64)
            low_keys += highs
            lows = coder.decode(categorical, tables.lows[low_keys]).astype(np.int64)
            offsets = highs * PART + lows
        elif not encoding:
            offsets = highs = lows = np.zeros(0, np.int64)
        values = np.zeros(len(classes), np.int64)
        values[inked] = np.minimum((plan.first_bin[ink_which, ink_classes] + offsets) * plan.width[inked % n], 255)
        values = values.reshape(len(r), n)
        coded[r, c] = values
        level[r + 1, c + 1] = NEIGHBOUR_LEVEL[values]
        tables.update(class_keys, classes, high_keys, highs, low_keys, lows)
    return np.ascontiguousarray(np.moveaxis(coded, -1, 0))


def encode(coder, categorical, images: np.ndarray, predictions: np.ndarray, max_errors: np.ndarray) -> np.ndarray:
    """Append the residual of `images` (uint8 [n, H, W]) to a constriction range encoder; returns the
    pixels the decoder will give back (within max_errors[i] of images[i])."""
    if not len(images):
        return images.copy()
    return _code(coder, categorical, predictions, max_errors, images)


def decode(decoder, categorical, predictions: np.ndarray, max_errors: np.ndarray) -> np.ndarray:
    """Read the residual that encode() appended, from a constriction range decoder: uint8 [n, H, W]."""
    if not len(predictions):
        return predictions.copy()
    return _code(decoder, categorical, predictions, max_errors, None)
