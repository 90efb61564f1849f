"""The classic figure: MNIST test digits (top) above their aec reconstructions (bottom).

python -m benchmarks.rd.figure --out docs/reconstructions.png [--model NAME|FILE] [--count 12]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import aec
from aec.datasets import load_mnist
from aec.metrics import mse, psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/reconstructions.png"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()

    import matplotlib  # here, not at the top: slow to import, and `--help` need not wait

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, _ = load_mnist("test")
    originals = images[: args.count]
    data = aec.encode(originals, model=args.model)
    decoded = aec.decode(data, model=args.model)
    fig, axes = plt.subplots(2, args.count, figsize=(args.count * 0.9, 2.2))
    for i in range(args.count):
        for row, picture in enumerate((originals[i], decoded[i])):
            axes[row, i].imshow(picture, cmap="gray", vmin=0, vmax=255)
            axes[row, i].axis("off")
    model = aec.resolve_model(args.model)
    fig.suptitle(
        f"MNIST test digits (top) and aec {model.name} (bottom): "
        f"{aec.info(data)['latent_bytes'] / args.count:.1f} coded B/image, "
        f"{psnr(mse(originals, decoded)):.1f} dB over these {args.count}",
        fontsize=8,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
