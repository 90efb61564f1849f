"""Rate-distortion search for pack's integer latents (`aec pack --effort`).

The encoder is one forward pass: fast, but the latents it rounds to are far
from the best the decoder can turn into pixels (what each effort buys:
benchmarks/RESULTS.md, rate-distortion). This module spends CPU at pack
time to pick, image by image, latents with a lower cost

    J = bits + lambda * MSE

where bits come from the model's own entropy tables (what the coder will
spend, escapes included), MSE is that of the uint8 pixels unpack will write,
on [0, 1], and lambda is the model's (search_lambda). Decoding
is untouched: any aec decodes the result, byte for byte as before.

Models whose metadata asks for it (the shipped levels 1-3) search by ranked
moves: the tables' bits and the decoder's gradient predict the change of J
of every one-step move of every latent; the best few predicted are tried,
one decode each, keeping what lowers J; a few rounds.
- effort 0: only the images the encoder's latents leave below a threshold
  (about the worst tenth of the training digits: 18 / 21 / 23 dB at levels
  1 / 2 / 3) move, the 2 / 2 / 4 best predicted moves made together, kept if
  one exact decode says J fell (touch_up: +0.13 / +0.16 / +0.21 dB on the
  MNIST test digits for 13-19 us of CPU an image; benchmarks/RESULTS.md,
  "Cheaper searches"). Models without the setting take the encoder's latents.
- effort 1: ranked moves from the encoder's latents (8 best, 3 rounds for
  the shipped levels: the J of the coordinate descent below in about 40% of
  its time; benchmarks/RESULTS.md, "Cheaper searches");
- effort 2: gradient descent on the continuous latents first (Adam; the rate
  relaxed by interpolating the tables' bits), rounded (kept only where it
  beats the encoder's rounding), then ranked moves (50 steps, 8 best, 3
  rounds: the J of the older effort 2 in a fifth of its time).
Any other model searches as before, so that its files pack the same bytes:
- effort 1: coordinate descent. For each latent in turn, try the step down
  or up that the decoder's gradient predicts is better, and keep it if it
  lowers J; two passes over the latents.
- effort 2: 200 gradient steps as above, then coordinate descent with moves
  of one and two steps, four passes.

Written here rather than taken from a library: it needs the decoder's exact
NumPy forward pass (runtime.py) and its gradient, for an MLP of three dense
layers; an autodiff framework would mean TensorFlow at pack time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import runtime
from .errors import ModelError
from .metrics import image_psnrs
from .modelfile import Model

EFFORTS = (0, 1, 2)
ESCAPE_BITS = 32  # an escaped value also costs two 16-bit uniform symbols (entropy.py)
_INT32 = (-(2**31) + 1, 2**31 - 1)
GRADIENT_STEPS = 200


def search_lambda(model: Model, effort: int) -> float:
    """The lambda of J at this effort: the model's own search setting if it has one, else the
    lambda it was trained with.

    The shipped levels record one lambda per effort (metadata "search": {"lambda": {"1": L1,
    "2": L2}}), chosen so that a level keeps about the same bytes per image at every effort and
    more effort buys better pictures: at one lambda the longer search of effort 2 would also
    trade some quality for fewer bytes.
    """
    metadata = model.metadata
    try:
        if "search" in metadata:
            value = metadata["search"]["lambda"]
            value = float(value[str(effort)] if isinstance(value, dict) else value)
        else:
            value = float(metadata["training"]["lmbda"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(
            f"model {model.name}: no search or training lambda in its metadata, "
            f"which --effort {effort} needs (models made by aec train have one)"
        ) from None
    if not value > 0:
        raise ModelError(f"model {model.name}: lambda {value} for --effort {effort} is not positive")
    return value


class _Costs:
    """J = bits + lambda * MSE of candidate latents for a batch of images."""

    def __init__(self, model: Model, images: np.ndarray, lam: float):
        self.model = model
        counts = model.table_counts.astype(np.float64)
        self.bits = -np.log2(counts / counts.sum(axis=1, keepdims=True))  # [latents, slots + escape]
        self.bits[:, -1] += ESCAPE_BITS
        self.low = model.table_low.astype(np.int64)
        self.escape = counts.shape[1] - 1
        self.columns = np.arange(model.latents)
        self.target = images.reshape(len(images), -1).astype(np.float32) * np.float32(1 / 255)
        self.per_squared_error = lam / model.pixels

    def latent_bits(self, j: int, values: np.ndarray) -> np.ndarray:
        """Bits of latent j taking `values` (one per image)."""
        symbols = values - self.low[j]
        symbols[(symbols < 0) | (symbols >= self.escape)] = self.escape
        return self.bits[j, symbols]

    def symbol_bits(self, latents: np.ndarray) -> np.ndarray:
        """Bits of each latent of each image, [n, latents]."""
        symbols = latents - self.low
        symbols[(symbols < 0) | (symbols >= self.escape)] = self.escape
        return self.bits[self.columns, symbols]

    def rate(self, latents: np.ndarray) -> np.ndarray:
        return self.symbol_bits(latents).sum(axis=1)

    def squared_error(self, latents: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        target = self.target if rows is None else self.target[rows]
        return _squared_error(runtime.to_uint8(runtime.synthesise(self.model, latents)), target)

    def of_pixels(self, latents: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """Costs of `latents` given their decoded uint8 `pixels` (every image of the batch)."""
        return self.rate(latents) + self.per_squared_error * _squared_error(pixels, self.target)

    def __call__(self, latents: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Costs of `latents`: of every image, or of the images `rows` (then latents has those rows only)."""
        return self.rate(latents) + self.per_squared_error * self.squared_error(latents, rows)


def _coordinate_descent(costs: _Costs, latents: np.ndarray, passes: int, moves: tuple[int, ...]) -> np.ndarray:
    """Per image, try each move of each latent in turn, keeping what lowers J.

    After the first pass only the images that changed since a latent's moves
    were last tried are tried again (the others would give the same costs,
    none lower): the same result for a fraction of the decoding.
    """
    latents = latents.copy()
    cost = costs(latents)
    count, width = latents.shape
    changed_at = np.full(count, -1)  # per image, the last step that changed it
    step = 0
    for _ in range(passes):
        for j in range(width):
            # Tried at step - width with the latents as they are now, unless changed since.
            rows = np.flatnonzero(changed_at >= step - width) if step >= width else np.arange(count)
            for move in moves:
                if not len(rows):
                    break
                candidate = latents[rows]
                candidate[:, j] += move
                candidate_cost = costs(candidate, rows)
                better = candidate_cost < cost[rows]
                latents[rows[better]] = candidate[better]
                cost[rows[better]] = candidate_cost[better]
                changed_at[rows[better]] = step
            step += 1
        if not np.any(changed_at >= step - width):
            break
    return latents


def _distortion_slope(costs: _Costs, latents: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
    """lambda x d(MSE)/d(latent) per image and latent, in J per step of each latent; with the latents'
    exact `pixels`, the float decoder's output layer is not run (_decoder_gradient)."""
    step = costs.model.quant_step.astype(np.float64)
    values = (latents * step).astype(np.float32)
    return costs.per_squared_error * step * _decoder_gradient(costs.model, values, costs.target, pixels)


def _predicted_changes(costs: _Costs, latents: np.ndarray, slope: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The change of J that the tables' bits and the slope predict for latent j one step down and up."""
    now = costs.latent_bits(j, latents[:, j])
    down = costs.latent_bits(j, latents[:, j] - 1) - now - slope[:, j]
    up = costs.latent_bits(j, latents[:, j] + 1) - now + slope[:, j]
    return down, up


def _all_predicted_changes(costs: _Costs, latents: np.ndarray, slope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_predicted_changes of every latent at once: (down, up), each [n, latents]."""
    now = costs.symbol_bits(latents)
    return costs.symbol_bits(latents - 1) - now - slope, costs.symbol_bits(latents + 1) - now + slope


def _guided_descent(costs: _Costs, latents: np.ndarray, passes: int, refresh: int = 8) -> np.ndarray:
    """Coordinate descent that tries one move per latent instead of two: the step down or up
    that the tables' bits plus the decoder's gradient predict lowers J more (the gradient
    refreshed every `refresh` latents). Measured on 1,000 test digits at levels 1, 3, 5: the
    same bytes and PSNR as trying both (within 0.01 dB), in about 60% of the time.
    """
    latents = latents.copy()
    cost = costs(latents)
    for _ in range(passes):
        for j in range(latents.shape[1]):
            if j % refresh == 0:
                slope = _distortion_slope(costs, latents)
            down, up = _predicted_changes(costs, latents, slope, j)
            candidate = latents.copy()
            candidate[:, j] += np.where(down < up, -1, 1)
            candidate_cost = costs(candidate)
            better = candidate_cost < cost
            latents[better] = candidate[better]
            cost = np.where(better, candidate_cost, cost)
    return latents


def _ranked_moves(costs: _Costs, latents: np.ndarray, best: int, rounds: int) -> np.ndarray:
    """Per image and round: predict the change of J of each latent's step down and up (tables' bits
    plus the decoder's gradient), then try the `best` predicted moves in turn, keeping what lowers J."""
    latents = latents.copy()
    cost = costs(latents)
    rows = np.arange(len(latents))
    for _ in range(rounds):
        slope = _distortion_slope(costs, latents)
        change = np.stack(_all_predicted_changes(costs, latents, slope), axis=2)  # [..., 0] down, [..., 1] up
        # A stable sort: ties keep latent order, so every machine tries the same moves.
        order = np.argsort(change.reshape(len(latents), -1), axis=1, kind="stable")[:, :best]
        for k in range(order.shape[1]):
            candidate = latents.copy()
            candidate[rows, order[:, k] // 2] += np.where(order[:, k] % 2, 1, -1)
            candidate_cost = costs(candidate)
            better = candidate_cost < cost
            latents[better], cost[better] = candidate[better], candidate_cost[better]
    return latents


@dataclass(frozen=True)
class RankedSearch:
    """A model's ranked-moves search at one effort (metadata "search": {"effort N": {...}})."""

    best: int  # moves tried per round
    rounds: int
    gradient_steps: int = 0  # effort 2: Adam steps on the continuous latents first
    below: float = 0.0  # effort 0: dB; only the images the encoder's latents leave below it are searched


METHODS = {0: "gradient moves below", 1: "ranked moves", 2: "gradient steps, then ranked moves"}
MOST_DB = 100.0  # an effort 0 threshold above this would search every image: effort 1's job


def ranked_search(model: Model, effort: int) -> RankedSearch | None:
    """The ranked-moves search the model asks for at `effort`, or None: at effort 0 the encoder's
    latents alone, at 1 and 2 the older searches (the coordinate descent, after 200 gradient steps at
    effort 2), so that older models pack as before."""
    search = model.metadata.get("search")
    setting = search.get(f"effort {effort}") if isinstance(search, dict) and effort in METHODS else None
    if setting is None:
        return None
    try:
        if setting["method"] != METHODS[effort]:
            raise ValueError(setting["method"])
        steps = int(setting["steps"]) if effort == 2 else 0
        below = float(setting["below"]) if effort == 0 else 0.0
        found = RankedSearch(int(setting["best"]), int(setting["rounds"]), steps, below)
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"model {model.name}: unknown effort {effort} search {setting!r}") from None
    in_range = (
        1 <= found.best <= 2 * model.latents
        and 1 <= found.rounds <= 16
        and 0 <= found.gradient_steps <= 1000
        and (effort != 0 or 0 < found.below <= MOST_DB)
    )
    if not in_range:
        raise ModelError(f"model {model.name}: effort {effort} search out of range ({setting!r})")
    return found


def check_search(model: Model, effort: int) -> None:
    """ModelError, before any work, where `model` lacks what its search at `effort` needs (a lambda)
    or records a bad setting for it."""
    if effort or ranked_search(model, 0):  # effort 0's search of the worst images uses effort 1's lambda
        search_lambda(model, effort or 1)
    ranked_search(model, effort)


def touch_up(
    model: Model, images: np.ndarray, latents: np.ndarray, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Effort 0's search (metadata "search": {"effort 0": ...}) of the images that the encoder's
    `latents` leave below the setting's PSNR (`pixels`: their exact decoding): per round, the `best`
    one-step moves that the tables' bits and the decoder's gradient predict lower J most (effort 1's
    lambda) are made together, kept if the exact pixels say J fell. Returns (latents, pixels).

    Why only those images, and all moves in one decode: the set's PSNR is that of its mean squared
    error, which the worst-coded images dominate, and a decode is most of a move's cost: a fifth of
    the images buys about a sixth of what effort 1 buys on every image, in a fortieth of its time.
    """
    setting = ranked_search(model, 0)
    if setting is None or not len(images):
        return latents, pixels
    rows = np.flatnonzero(image_psnrs(images, pixels) < setting.below)
    if not len(rows):
        return latents, pixels
    costs = _Costs(model, images[rows], search_lambda(model, 1))
    found, found_pixels = latents[rows].astype(np.int64), pixels[rows]
    cost = costs.of_pixels(found, found_pixels)
    for _ in range(setting.rounds):
        slope = _distortion_slope(costs, found, found_pixels)
        down, up = _all_predicted_changes(costs, found, slope)
        rises = up < down  # [n, latents]: each latent's better move, and its predicted change of J
        gain = np.where(rises, up, down)
        # A stable sort: ties keep latent order, so every machine makes the same moves.
        chosen = np.argsort(gain, axis=1, kind="stable")[:, : setting.best]
        at = np.arange(len(found))[:, None]
        candidate = found.copy()
        candidate[at, chosen] += np.where(gain[at, chosen] < 0, np.where(rises[at, chosen], 1, -1), 0)
        candidate_pixels = runtime.decode_latents(model, candidate.astype(np.int32))
        candidate_cost = costs.of_pixels(candidate, candidate_pixels)
        better = candidate_cost < cost
        found[better], cost[better] = candidate[better], candidate_cost[better]
        found_pixels[better] = candidate_pixels[better]
    latents, pixels = latents.copy(), pixels.copy()
    latents[rows], pixels[rows] = found, found_pixels
    return latents, pixels


def _squared_error(pixels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per image, the sum of squared errors of uint8 pixels [n, H, W] against target [n, pixels] on [0, 1]."""
    diff = pixels.reshape(len(pixels), -1).astype(np.float32) * np.float32(1 / 255) - target
    return np.einsum("ij,ij->i", diff, diff, dtype=np.float64)


def _decoder_gradient(
    model: Model, values: np.ndarray, target: np.ndarray, pixels: np.ndarray | None = None
) -> np.ndarray:
    """d(sum of squared errors of the float decoder output)/d(latent values), by backpropagation.

    Given `pixels` (uint8, what the exact decoder makes of these latents), the output and its sigmoid
    slope are taken from them instead of the float decoder's last layer: the largest of its three
    products, about 15% of effort 0's search time per image searched.
    """
    layers = model.decoder
    from_pixels = pixels is not None and layers[-1].activation == "sigmoid"
    outputs = []
    x = values
    for layer in layers[:-1] if from_pixels else layers:
        x = runtime._activate(x @ layer.kernel + layer.bias, layer.activation)
        outputs.append(x)
    if from_pixels:
        x = pixels.reshape(len(pixels), -1).astype(np.float32) * np.float32(1 / 255)
        outputs.append(x)
    grad = 2 * (x - target)
    for layer, out in zip(reversed(layers), reversed(outputs)):
        if layer.activation == "relu":
            grad = grad * (out > 0)
        elif layer.activation == "sigmoid":
            grad = grad * out * (1 - out)
        elif layer.activation != "linear":
            raise ModelError(f"model {model.name}: no gradient for activation {layer.activation!r}")
        grad = grad @ layer.kernel.T
    return grad


def _gradient_descent(costs: _Costs, start: np.ndarray, steps: int, learning_rate: float = 0.05) -> np.ndarray:
    """Adam on continuous latent values from the encoder's, then rounded to integer latents.

    The rate is relaxed to linear interpolation of the tables' bits between
    integers (its slope is the gradient); the distortion is that of the
    decoder's float output.
    """
    model = costs.model
    step = model.quant_step.astype(np.float64)
    slots = costs.bits[:, :-1]
    slope = np.diff(slots, axis=1)  # [latents, slots - 1]
    values = start.astype(np.float64)
    mean = np.zeros_like(values)
    power = np.zeros_like(values)
    for t in range(1, steps + 1):
        index = np.clip(np.floor(values / step - costs.low), 0, slope.shape[1] - 1).astype(np.int64)
        grad = slope[costs.columns, index] / step
        grad += costs.per_squared_error * _decoder_gradient(model, values.astype(np.float32), costs.target)
        mean = 0.9 * mean + 0.1 * grad
        power = 0.999 * power + 0.001 * grad * grad
        values -= learning_rate * (mean / (1 - 0.9**t)) / (np.sqrt(power / (1 - 0.999**t)) + 1e-8)
    return np.clip(np.rint(values / step), *_INT32).astype(np.int64)


def search_latents(model: Model, images: np.ndarray, effort: int) -> np.ndarray:
    """int32 latents [N, latents] of uint8 images [N, H, W]: the encoder's (effort 0) or searched ones."""
    if effort not in EFFORTS:
        raise ValueError(f"effort must be one of {EFFORTS}")
    if effort == 0 or len(images) == 0:
        return runtime.encode_latents(model, images)
    costs = _Costs(model, images, search_lambda(model, effort))
    ranked = ranked_search(model, effort)
    if effort == 1:
        latents = runtime.encode_latents(model, images).astype(np.int64)
        if ranked:
            latents = _ranked_moves(costs, latents, ranked.best, ranked.rounds)
        else:
            latents = _guided_descent(costs, latents, passes=2)
    else:
        continuous = runtime.analyse(model, images)
        rounded = runtime.quantize(model, continuous).astype(np.int64)
        latents = _gradient_descent(costs, continuous, steps=ranked.gradient_steps if ranked else GRADIENT_STEPS)
        latents = np.where((costs(latents) < costs(rounded))[:, None], latents, rounded)
        if ranked:
            latents = _ranked_moves(costs, latents, ranked.best, ranked.rounds)
        else:
            latents = _coordinate_descent(costs, latents, passes=4, moves=(-2, -1, 1, 2))
    return np.clip(latents, *_INT32).astype(np.int32)
