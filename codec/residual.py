"""The residual coder: pixels within +-N of the originals (N = 0: lossless), coded after the latents.

Each coded image's pixels are quantised to bins of width 2N+1 anchored at 0
(bin k is the value k(2N+1), clipped to 255), so background zeros stay
exact and every pixel is within N of the original. Each bin is coded as a
class (8 value ranges, CLASS_EDGES) and, for classes other than 0, its
offset in the class as two symbols of up to 8 (high, low), with adaptive
context modelling conditioned on the decoder's picture of the image (the
prediction) and on the already-coded neighbours:

- class: the prediction, how far W and N came out above or below their
  predictions, whether WW or NN has ink, the classes of W and N and the
  levels of NW and NE;
- high: where the prediction, W, N and JPEG-LS's median predictor lie among
  the class's bins;
- low: where W, N and the median predictor lie among the high symbol's bins.

Pixels go in waves (2r + c constant): every neighbour a context uses is on
an earlier wave, so a wave is coded at once for all images of the chunk: 82
vectorised NumPy steps for 28x28 images, whatever the chunk size. The tables
are whole-number weights that start from a prior fitted on the MNIST
training digits (weights/residual-prior-1.npz) and learn after each wave
(+2 for each symbol coded); handed to constriction as float32 they are
exact, so every machine codes the same bytes. Specified in docs/FORMAT.md
("Residual coder 1"): changing anything here changes the format.
"""

from __future__ import annotations

import numpy as np

from .residual_tables import (
    CLASS_EDGES,
    CLASSES,
    ERROR_GROUP_EDGES,
    PART,
    Tables,
    group_prior,
)

NEIGHBOUR_EDGES = np.array([1, 64, 160, 252])  # 5 levels, for NW and NE
PREDICTION_EDGES = np.array([1, 8, 24, 48, 80, 112, 144, 176, 208, 232, 248, 254])  # 13 levels
SURPRISE_EDGES = np.array([-100, -20, 21, 101])  # 5 levels of (W + N) - (their predictions)
FAR_EDGES = np.array([1, 160])  # 3 levels, for the brighter of WW and NN


def _levels(edges: np.ndarray) -> np.ndarray:
    """A 256-entry lookup: value -> its level among `edges`."""
    return np.searchsorted(edges, np.arange(256), side="right").astype(np.int64)


NEIGHBOUR_LEVEL = _levels(NEIGHBOUR_EDGES)
PREDICTION_LEVEL = _levels(PREDICTION_EDGES)
FAR_LEVEL = _levels(FAR_EDGES)
SURPRISE_LEVEL = np.searchsorted(SURPRISE_EDGES, np.arange(-510, 511), side="right")  # indexed by surprise + 510
CLASS_OF_VALUE = _levels(CLASS_EDGES)


def bins(max_error: int) -> int:
    """How many bins cover 0..255 for pixels within +-max_error."""
    return (255 + max_error) // (2 * max_error + 1) + 1


def quantise(images: np.ndarray, max_errors: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W] -> the pixels the residual coder gives back for each image's max error."""
    width = (2 * max_errors.astype(np.int64) + 1).reshape(-1, 1, 1)
    k = (images.astype(np.int64) + width // 2) // width
    return np.minimum(k * width, 255).astype(np.uint8)


def _distinct(values: np.ndarray) -> np.ndarray:
    """np.unique of a 1-D array: its distinct values, sorted. (np.unique imports numpy.ma on first use:
    15-20 ms of the first chunk that holds a residual.)"""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


class _Plan:
    """Per max error present in the chunk: each bin's class and offset, and which symbols can occur
    (a mask of 0s and 1s that zeroes the weights of the others)."""

    def __init__(self, max_errors: np.ndarray):
        self.errors = _distinct(max_errors)
        self.which = np.searchsorted(self.errors, max_errors)  # per image: its max error's row below
        n = len(self.errors)
        most = bins(int(self.errors.min()))
        self.bin_of_value = np.zeros((n, 256), np.int32)
        self.bin_class = np.zeros((n, most), np.int64)
        self.bin_offset = np.zeros((n, most), np.int64)
        self.first_bin = np.zeros((n, CLASSES), np.int64)
        self.class_mask = np.zeros((n, CLASSES), np.float32)
        self.high_mask = np.zeros((n, CLASSES, PART), np.float32)
        self.low_mask = np.zeros((n, CLASSES, PART, PART), np.float32)
        for i, e in enumerate(self.errors.tolist()):
            count = bins(e)
            self.bin_of_value[i] = (np.arange(256) + e) // (2 * e + 1)
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
        # Per image: its table set (the rank of its error group among those present) and bin width.
        groups = np.searchsorted(ERROR_GROUP_EDGES, max_errors, side="right")
        self.groups = _distinct(groups)
        self.table_set = np.searchsorted(self.groups, groups).astype(np.int64)
        self.sets = len(self.groups)
        self.width = 2 * max_errors.astype(np.int64) + 1

    def bin_of(self, values: np.ndarray, which: np.ndarray | None) -> np.ndarray:
        """The bin of each value, for its image's max error (`which`: the images' rows; None: the one error)."""
        return self.bin_of_value[0][values] if which is None else self.bin_of_value[which, values]


def waves(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The coding order: wave t holds the pixels (r, c) with 2r + c = t, by rising r. A pixel's
    neighbours W, WW, NW, N, NN and NE all lie on earlier waves, so a whole wave is coded at once."""
    out = []
    for t in range(2 * (height - 1) + width):
        r = np.arange(max(0, -(-(t - width + 1) // 2)), min(height - 1, t // 2) + 1)
        out.append((r, t - 2 * r))
    return out


# The coder keeps every per-pixel array "wave-major": cell [t + 4, r + 2] holds pixel (r, c = t - 2r),
# each cell a run of the chunk's n images. A wave is then one contiguous block of rows, and so is each
# neighbour a context reads (W: wave t-1, row r; N: t-2, r-1; NW: t-3, r-1; NE: t-1, r-1; WW: t-2, r;
# NN: t-4, r-2): views, where gathering them pixel by pixel cost most of the time of a chunk that holds a
# few residuals. Cells that stand for no pixel (c < 0 or c >= width, or the padding) stay 0, which is what
# a neighbour outside the image counts as.
SKEW_T, SKEW_R = 4, 2  # padding before the first wave and above the first row


def _skewed(per_pixel: np.ndarray) -> np.ndarray:
    """int [H, W, n], each within +-32767 -> int16 in the wave-major layout [2(H-1) + W + SKEW_T, H + SKEW_R, n],
    zeros elsewhere. (int16: the layout holds 3.3 cells per pixel, and big chunks are bound by memory traffic.)"""
    height, width, n = per_pixel.shape
    out = np.zeros((2 * (height - 1) + width + SKEW_T, height + SKEW_R, n), np.int16)
    for r in range(height):  # row r's pixels lie on waves 2r .. 2r + width - 1
        out[2 * r + SKEW_T : 2 * r + SKEW_T + width, r + SKEW_R] = per_pixel[r]
    return out


def _unskewed(skewed: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([skewed[2 * r + SKEW_T : 2 * r + SKEW_T + width, r + SKEW_R] for r in range(height)])


def _place_table(scale: int, shift: int) -> np.ndarray:
    """Where a bin lies from the class's (or high symbol's) first bin in steps of 2**shift bins: 0 below,
    1..8 the 8 steps, 9 above; a lookup indexed by (bin - first) + 256, times `scale` (its digit in a key)."""
    d = np.arange(-256, 257)
    return ((np.minimum(np.maximum(d >> shift, -1), 8) + 1) * scale).astype(np.int32)


# A class key is ((((((part + far) * 5 + surprise) * CLASSES + class W) * CLASSES + class N) * 5 + NW) * 5
# + NE, part = (table set * 13 + prediction level) * 3; written out as a sum of lookups, each level times
# the weight of its digit. A high key is ((set_class * 10 + place P) * 10 + place W) * 10 + ...; a low key
# likewise. The keys are the format's: these tables only compute them in fewer NumPy steps.
_NE_DIGIT, _NW_DIGIT = 1, 5
_N_DIGIT = 25
_W_DIGIT = CLASSES * _N_DIGIT
_SURPRISE_DIGIT = CLASSES * _W_DIGIT
_FAR_DIGIT = 5 * _SURPRISE_DIGIT
PART_KEY = np.int32(3 * _FAR_DIGIT)
# Context keys in int32 (they stay below 2^21): half the memory traffic of int64 on big chunks.
FAR_KEY = (FAR_LEVEL * _FAR_DIGIT).astype(np.int32)
SURPRISE_KEY = (SURPRISE_LEVEL * _SURPRISE_DIGIT).astype(np.int32)
W_CLASS_KEY, N_CLASS_KEY = (CLASS_OF_VALUE * _W_DIGIT).astype(np.int32), (CLASS_OF_VALUE * _N_DIGIT).astype(np.int32)
NW_KEY, NE_KEY = (NEIGHBOUR_LEVEL * _NW_DIGIT).astype(np.int32), (NEIGHBOUR_LEVEL * _NE_DIGIT).astype(np.int32)
HIGH_PLACE = [_place_table(10**k, 3) for k in range(4)]  # by digit: median 1, N 10, W 100, prediction 1000
LOW_PLACE = [_place_table(10**k, 0) for k in range(3)]  # median 1, N 10, W 100


def _median_predictor(west: np.ndarray, north: np.ndarray, north_west: np.ndarray) -> np.ndarray:
    """JPEG-LS's predictor: the median of W, N and W + N - NW (it follows an edge), in 0..255."""
    low, high = np.minimum(west, north), np.maximum(west, north)
    return np.where(north_west >= high, low, np.where(north_west <= low, high, west + north - north_west))


def pixel_major(images: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W] -> int32 [H, W, n], contiguous: each pixel's values across the images side by side."""
    return np.ascontiguousarray(np.moveaxis(images, 0, -1), dtype=np.int32)


def _code(coder, categorical, predictions: np.ndarray, max_errors: np.ndarray, images: np.ndarray | None, tables=None):
    """Code (images given) or decode (images None) the residual; returns the coded pixels uint8 [n, H, W]."""
    plan = _Plan(max_errors)
    if tables is None:
        tables = Tables(plan.groups, group_prior)
        try:
            return _code_with(coder, categorical, predictions, plan, images, tables)
        finally:
            tables.release()
    return _code_with(coder, categorical, predictions, plan, images, tables)


def _code_with(coder, categorical, predictions: np.ndarray, plan: _Plan, images: np.ndarray | None, tables: Tables):
    """_code with the chunk's plan and tables."""
    n, height, width = predictions.shape
    encoding = images is not None
    one_error = len(plan.errors) == 1
    all_classes = one_error and plan.class_mask[0].all()
    per_image = None if one_error else plan.which  # rows of the plan's tables, when they differ
    if encoding:
        bin_to_code = _skewed(plan.bin_of(pixel_major(images), per_image))
    # What depends on the prediction alone, for every pixel at once, wave-major.
    prediction = pixel_major(predictions)
    padded = np.zeros((height + 1, width + 1, n), np.int32)
    padded[1:, 1:] = prediction
    # surprise + 510 = W + N + this (how much brighter W and N came out than predicted).
    surprise_base = _skewed(510 - padded[1:, :-1] - padded[:-1, 1:])
    prediction_part = _skewed(plan.table_set * 13 + PREDICTION_LEVEL[prediction])  # times PART_KEY: a class key
    prediction_place = _skewed(plan.bin_of(prediction, per_image) + 256)  # + 256: the place tables' origin
    value = np.zeros(surprise_base.shape, np.int16)  # the coded values, wave-major
    set_base = plan.table_set * CLASSES if plan.sets > 1 else None
    tiled = {}  # wave length -> (the plan's row, the image) of each (pixel, image) pair of a wave
    for t, (r, _) in enumerate(waves(height, width)):
        length = len(r)
        if length not in tiled:
            tiled[length] = np.tile(plan.which, length), np.tile(np.arange(n), length)
        which, images_of = tiled[length]
        tt, rows, above = t + SKEW_T, slice(r[0] + SKEW_R, r[-1] + SKEW_R + 1), slice(r[0] + 1, r[-1] + 2)
        west, north = value[tt - 1, rows].ravel(), value[tt - 2, above].ravel()
        north_west, north_east = value[tt - 3, above].ravel(), value[tt - 1, above].ravel()
        far = np.maximum(value[tt - 2, rows], value[tt - 4, r[0] : r[-1] + 1]).ravel()
        class_keys = prediction_part[tt, rows].ravel() * PART_KEY + FAR_KEY[far]
        class_keys += SURPRISE_KEY[west + north + surprise_base[tt, rows].ravel()]
        class_keys += W_CLASS_KEY[west]
        class_keys += N_CLASS_KEY[north]
        class_keys += NW_KEY[north_west]
        class_keys += NE_KEY[north_east]
        weights = np.take(tables.classes, class_keys, axis=0)  # (many times faster than tables.classes[keys])
        if not all_classes:
            weights *= plan.class_mask[0] if one_error else plan.class_mask[which]
        if encoding:
            k = bin_to_code[tt, rows].ravel()
            classes = plan.bin_class[which, k]
            coder.encode(classes.astype(np.int32), categorical, weights)
        else:
            classes = coder.decode(categorical, weights).astype(np.int64)
        inked = np.flatnonzero(classes)
        ink_classes, ink_which = classes[inked], which[inked]
        first = plan.first_bin[ink_which, ink_classes]
        ink_rows = None if one_error else ink_which
        west_bin, north_bin = plan.bin_of(west[inked], ink_rows), plan.bin_of(north[inked], ink_rows)
        median_bin = plan.bin_of(_median_predictor(west[inked], north[inked], north_west[inked]), ink_rows)
        set_class = ink_classes if set_base is None else set_base[images_of[inked]] + ink_classes
        origin = 256 - first
        high_keys = set_class * 10**4 + HIGH_PLACE[3][prediction_place[tt, rows].ravel()[inked] - first]
        high_keys += HIGH_PLACE[2][west_bin + origin]
        high_keys += HIGH_PLACE[1][north_bin + origin]
        high_keys += HIGH_PLACE[0][median_bin + origin]
        if encoding:
            offsets = plan.bin_offset[ink_which, k[inked]]
            highs, lows = offsets // PART, offsets % PART
        if len(inked):
            weights = np.take(tables.highs, high_keys, axis=0) * plan.high_mask[ink_which, ink_classes]
            if encoding:
                coder.encode(highs.astype(np.int32), categorical, weights)
            else:
                highs = coder.decode(categorical, weights).astype(np.int64)
        elif not encoding:
            highs = lows = np.zeros(0, np.int64)
        start = first + PART * highs
        origin = 256 - start
        low_keys = (set_class * PART + highs) * 1000 + LOW_PLACE[2][west_bin + origin]
        low_keys += LOW_PLACE[1][north_bin + origin]
        low_keys += LOW_PLACE[0][median_bin + origin]
        if len(inked):
            weights = np.take(tables.lows, low_keys, axis=0) * plan.low_mask[ink_which, ink_classes, highs]
            if encoding:
                coder.encode(lows.astype(np.int32), categorical, weights)
            else:
                lows = coder.decode(categorical, weights).astype(np.int64)
        values = np.zeros(len(classes), np.int64)
        values[inked] = np.minimum((start + lows) * plan.width[images_of[inked]], 255)
        value[tt, rows] = values.reshape(length, n)
        tables.update(
            ((tables.classes, class_keys, classes), (tables.highs, high_keys, highs), (tables.lows, low_keys, lows))
        )
    return np.ascontiguousarray(np.moveaxis(_unskewed(value, height, width).astype(np.uint8), -1, 0))


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
