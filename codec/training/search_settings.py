"""Record how `aec pack --effort 0|1|2` search a model's latents, in its metadata, decoder untouched.

    python -m aec.training.search_settings MODEL.h5 [OUT.h5] [--effort-0 BELOW BEST ROUNDS]
        [--effort-1 BEST ROUNDS] [--effort-2 STEPS BEST ROUNDS]

The search (search.py) is pack-side only: any aec decodes its files the same
way. This rewrites the model file with metadata "search": {"effort 0":
{"method": "gradient moves below", "below": DB, "best": BEST, "rounds": ROUNDS} (effort 0 searches
only the images the encoder leaves below DB), "effort 1":
{"method": "ranked moves", "best": BEST, "rounds": ROUNDS}, "effort 2":
{"method": "gradient steps, then ranked moves", "steps": STEPS, ...}} and
checks that the decoder fingerprint (what .aec files record) did not change,
so every file the model made before still finds it and decodes to the same
pixels. The whole-file fingerprint changes, as it must: the file changed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

from ..errors import ModelError
from ..modelfile import Model, read_model, write_model
from ..search import METHODS, RankedSearch, ranked_search


def with_ranked_search(model: Model, settings: dict[int, RankedSearch]) -> Model:
    """`model` with a ranked-moves search at each effort of `settings`."""
    metadata = copy.deepcopy(model.metadata)
    search = metadata.setdefault("search", {})
    for effort, setting in settings.items():
        entry = {"method": METHODS[effort], "best": setting.best, "rounds": setting.rounds}
        if effort == 2:
            entry["steps"] = setting.gradient_steps
        if effort == 0:
            entry["below"] = setting.below
        search[f"effort {effort}"] = entry
    changed = dataclasses.replace(model, metadata=metadata, fingerprint=b"")
    for effort in settings:
        ranked_search(changed, effort)  # in range, or ModelError
    if changed.decoder_fingerprint != model.decoder_fingerprint:
        raise ModelError(f"model {model.name}: the decoder fingerprint changed")  # never: metadata is not in it
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("out", nargs="?", default=None, help="default: rewrite MODEL in place (atomically)")
    parser.add_argument("--effort-0", nargs=3, type=float, metavar=("BELOW", "BEST", "ROUNDS"))
    parser.add_argument("--effort-1", nargs=2, type=int, metavar=("BEST", "ROUNDS"))
    parser.add_argument("--effort-2", nargs=3, type=int, metavar=("STEPS", "BEST", "ROUNDS"))
    args = parser.parse_args(argv)
    settings = {}
    if args.effort_0:
        below, best, rounds = args.effort_0
        settings[0] = RankedSearch(int(best), int(rounds), below=below)
    if args.effort_1:
        settings[1] = RankedSearch(*args.effort_1)
    if args.effort_2:
        steps, best, rounds = args.effort_2
        settings[2] = RankedSearch(best, rounds, steps)
    if not settings:
        parser.error("give at least one of --effort-0, --effort-1, --effort-2")
    model = read_model(args.model)
    changed = with_ranked_search(model, settings)
    path = write_model(changed, args.out or args.model)
    check = read_model(path)
    assert check.decoder_fingerprint == model.decoder_fingerprint and check.metadata == changed.metadata
    print(
        f"wrote {path}: {changed.metadata['search']}; decoder fingerprint {check.decoder_fingerprint.hex()[:16]} unchanged"
    )


if __name__ == "__main__":
    main()
