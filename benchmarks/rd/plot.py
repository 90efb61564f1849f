"""The rate-distortion plot from benchmarks/results/rd.json: bytes per image (log) against PSNR, every codec a line.

    python -m benchmarks.rd.plot [--json benchmarks/results/rd.json] [--out docs/rate_distortion.png]

Lossless codecs (psnr_db null in the JSON) are drawn as dotted vertical lines at their
bytes per image. Whole-file bytes throughout (containers and headers included).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common import RESULTS, ROOT

STYLE = {  # family -> (colour, marker); unknown families get matplotlib's cycle
    "aec": ("black", "*"),
    "aec --effort 1": ("dimgrey", "*"),
    "aec --effort 2": ("darkgoldenrod", "*"),
    "seed autoencoder 784-32-784 (8-bit)": ("tab:brown", "D"),
    "WebP": ("tab:blue", "o"),
    "JPEG": ("tab:orange", "s"),
    "AVIF": ("tab:green", "^"),
    "PCA-32 + ANS (constriction)": ("tab:purple", "v"),
    "PCA-32 + xz": ("tab:pink", "<"),
    "TFC baseline (Keras 3 re-implementation)": ("tab:red", "P"),
}


def plot(results: dict, out: Path) -> None:
    import matplotlib  # here, not at the top: slow to import, and `--help` or a benchmark's import need not wait

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    families: dict[str, list] = {}
    for point in results["points"]:
        families.setdefault(point["family"], []).append(point)
    lossless_x = []
    for family, points in families.items():
        lossy = sorted((p for p in points if p["psnr_db"] is not None), key=lambda p: p["whole_bytes_per_image"])
        for p in points:
            if p["psnr_db"] is None:
                lossless_x.append((p["whole_bytes_per_image"], p["codec"]))
        if not lossy:
            continue
        colour, marker = STYLE.get(family, (None, "x"))
        x = [p["whole_bytes_per_image"] for p in lossy]
        y = [p["psnr_db"] for p in lossy]
        ours = family.startswith("aec")
        ax.plot(
            x,
            y,
            marker=marker,
            markersize=12 if ours else 5,
            color=colour,
            label=f"{family} ({len(lossy)} pt)",
            linewidth=2 if ours else 1,
        )
    for i, (x, name) in enumerate(sorted(lossless_x)):
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.text(
            x * 1.02,
            0.98 - 0.05 * i,
            f"{name} (lossless)",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            color="dimgrey",
            va="top",
        )
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image, whole file (log scale)")
    ax.set_ylabel("PSNR (dB), uint8 reconstructions")
    ax.set_title(f"Rate-distortion on the {results['test_images']:,} MNIST test digits", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=RESULTS / "rd.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "rate_distortion.png")
    args = parser.parse_args()
    plot(json.loads(args.json.read_text()), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
