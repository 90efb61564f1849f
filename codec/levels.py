"""The quality levels of `aec pack -Q N`: which shipped model codes the latents, and each image's floor.

Levels 1-3 are three trainings of one network (weights/README.md); their
floor is a safety net that at most 1% of the MNIST test digits need at
effort 0. Past level 3 the network saturates: finer latent steps of level
3's network bought +0.27 and +0.43 dB for 2 and 4.6 more bytes (the levels
these replace, still shipped to decode their files). A residual buys more.
Levels 4 and 5 give every image that would come back below the level's
floor a residual that meets it (guarantee.py), so the floor is the level's
promise: every image at least 23 dB at level 4 and 28 dB at level 5,
whatever it shows. Level 4 codes level 3's latents (most digits need no
residual); level 5 codes level 1's, as --max-error does: nearly every digit
gets a residual there, and level 1's pictures predict it for the fewest
bytes in all (26.2 B against 31.3 B with level 3's, for the same PSNR on
the MNIST test digits; benchmarks/RESULTS.md, "Levels").
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelError
from .modelfile import Model


@dataclass(frozen=True)
class Level:
    number: int
    model: str  # the shipped model that codes the latents
    floor: float  # dB: pack's default --min-psnr at this level


LEVELS = {
    level.number: level
    for level in (
        Level(1, "mnist-q1", 14.5),
        Level(2, "mnist-q2", 17.0),
        Level(3, "mnist-q3", 18.0),
        Level(4, "mnist-q3", 23.0),
        Level(5, "mnist-q1", 28.0),
    )
}
DEFAULT_LEVEL = 3

# A model's own safety floor, by the quality it records (a model given with --model, without -Q):
# that of the level it was trained for (1-3), else half a dB above the highest of those, as for the
# earlier levels 4 and 5 and a user's own models.
TRAINED_LEVELS = (1, 2, 3)
MODEL_FLOORS = {number: LEVELS[number].floor for number in TRAINED_LEVELS}
OTHER_MODEL_FLOOR = max(MODEL_FLOORS.values()) + 0.5


def level(number: int) -> Level:
    if number not in LEVELS:
        shipped = ", ".join(map(str, sorted(LEVELS)))
        raise ModelError(f"quality {number} is not shipped (levels: {shipped})")
    return LEVELS[number]


def model_floor(model: Model) -> float:
    """The safety floor of `model` used alone: below it an image needs rescue because it looks unlike
    the digits the model was trained on."""
    return MODEL_FLOORS.get(model.quality, OTHER_MODEL_FLOOR)
