"""The rate-distortion benchmark: aec against classic codecs and learned baselines on the MNIST test set.

    AEC_DATA=../shared/data/mnist nice -n 19 python -m benchmarks.rd.benchmark [--model FILE]... [--limit N] [--quick]
        [--efforts 0,1,2] [--out-dir DIR] [--plot PNG]

Codes the 10,000 MNIST test digits with
- every aec quality level (aec.levels: its model and floor) and every
  extra model file given with --model (a candidate not yet shipped), at each
  pack --effort of --efforts (each effort its own curve: "aec" is effort 0),
  through aec.encode / aec.decode: whole-file bytes = the .aec file,
  coded bytes = aec.info(data)['latent_bytes'];
- the seed autoencoder (benchmarks/rd/seed_autoencoder.py, cached weights);
- every classic codec point (aec.classic) and the PCA baseline (benchmarks/rd/pca.py);
- the TensorFlow Compression MNIST model re-implemented in Keras 3
  (benchmarks/rd/tfc_baseline.py): its points come from the committed
  benchmarks/results/tfc_baseline.json, with the classifier accuracy when the
  decoded digits are cached in benchmarks/results/tfc/ (not committed);
and reports for each: whole-file bytes per image, coded bytes per image
where meaningful, xz of the concatenated files for per-image formats, MSE on
[0,1], PSNR, and the reference classifier's accuracy on the decoded digits
(benchmarks/rd/reference_classifier.py; trained first if not cached).

Writes benchmarks/results/rd.json, benchmarks/results/rd.md and
docs/rate_distortion.png. Compares each aec curve with every other lossy curve: BD-rate
(aec.metrics) by cubic fit where both curves have >= 4 points and
by PCHIP where both have >= 2, and at each aec point the bytes the other
curve needs for the same PSNR and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import PIL
from PIL import features

import aec
from aec import classic
from aec.datasets import load_mnist
from aec.metrics import MIN_POINTS, PCHIP_MIN_POINTS, bd_rate, bd_rate_pchip, mse, pareto, psnr, rate_at_psnr

from ..common import RESULTS, ROOT, command_line, write_results
from . import reference_classifier, seed_autoencoder
from .pca import PCA, PCABasis
from .plot import plot

AEC_FAMILY = "aec"
SEED_FAMILY = "seed autoencoder 784-32-784 (8-bit)"
TFC_JSON = RESULTS / "tfc_baseline.json"
TFC_CACHE = RESULTS / "tfc"


def point(
    family: str,
    codec_name: str,
    parameter,
    originals: np.ndarray,
    labels: np.ndarray,
    decoded: np.ndarray,
    whole_bytes: int,
    coded_bytes: int | None = None,
    folder_xz_bytes: int | None = None,
    notes: str = "",
    seconds: float | None = None,
) -> dict:
    n = len(originals)
    err = mse(originals, decoded)
    return {
        "family": family,
        "codec": codec_name,
        "parameter": parameter,
        "whole_bytes": whole_bytes,
        "whole_bytes_per_image": whole_bytes / n,
        "coded_bytes_per_image": None if coded_bytes is None else coded_bytes / n,
        "folder_xz_bytes_per_image": None if folder_xz_bytes is None else folder_xz_bytes / n,
        "mse": err,
        "psnr_db": None if err == 0 else psnr(err),  # None: lossless (bit-exact)
        "classifier_accuracy": reference_classifier.accuracy(decoded, labels),
        "notes": notes,
        "seconds_encode_decode": None if seconds is None else round(seconds, 2),
    }


def aec_family(effort: int) -> str:
    return AEC_FAMILY if effort == 0 else f"{AEC_FAMILY} --effort {effort}"


def aec_points(images, labels, extra_models: list[str], efforts: list[int]) -> list[dict]:
    from aec.levels import LEVELS

    specs = [(f"aec -Q {number}", {"quality": number}) for number in LEVELS]
    specs += [(f"aec {Path(m).stem}", {"model": m}) for m in extra_models]
    out = []
    for effort in efforts:
        for label, options in specs:
            model = aec.resolve_model(options.get("model"), options.get("quality"))
            start = time.perf_counter()
            data = aec.encode(images, effort=effort, **options)
            decoded = aec.decode(data, model=model)
            seconds = time.perf_counter() - start
            facts = aec.info(data)
            out.append(
                point(
                    aec_family(effort),
                    label + (f" -e {effort}" if effort else ""),
                    facts["quality"],
                    images,
                    labels,
                    decoded,
                    len(data),
                    coded_bytes=facts["latent_bytes"],
                    seconds=seconds,
                    notes=f"model {model.name}, quality {facts['quality']}, effort {effort}, "
                    f"rescued {facts['images_rescued']}, fingerprint {model.fingerprint.hex()[:16]}",
                )
            )
    return out


def seed_point(images, labels) -> dict:
    start = time.perf_counter()
    whole, coded, decoded = seed_autoencoder.code(images)
    seconds = time.perf_counter() - start
    return point(
        SEED_FAMILY,
        "seed autoencoder",
        8,
        images,
        labels,
        decoded,
        whole,
        coded_bytes=coded,
        seconds=seconds,
        notes="8 bits per latent, per-latent min/max over the coded set "
        f"({seed_autoencoder.SIDE_INFO_BYTES} bytes side information per file)",
    )


def tfc_points(images, labels) -> list[dict]:
    """The TFC baseline's recorded points (benchmarks/rd/tfc_baseline.py ran the real coding on all 10,000 test digits).

    With the decoded digits cached, the point is rebuilt from them (so the classifier accuracy is measured and
    the MSE checked against the record); without, the recorded figures are used and the accuracy is unknown.
    """
    if not TFC_JSON.exists():
        return []
    record = json.loads(TFC_JSON.read_text())
    out = []
    for r in record["points"]:
        n = len(images)
        name = f"lmbda{r['lambda']:g}-e{r['epochs']}-s{r['seed']}"
        notes = (
            f"lambda {r['lambda']:g}, {r['epochs']} epochs, seed {r['seed']}; 4-byte header + one range-coded "
            f"stream, per-latent training-set histograms; recorded in {TFC_JSON.relative_to(ROOT)}"
        )
        cached = TFC_CACHE / f"{name}.decoded.npz"
        if cached.exists() and r["test_images"] >= n:
            with np.load(cached) as f:
                decoded = f["decoded"][:n]
            p = point(
                record["family"],
                "TFC baseline",
                f"lambda {r['lambda']:g}",
                images,
                labels,
                decoded,
                round(r["bytes_per_image"] * n),
                coded_bytes=round(r["coded_bytes_per_image"] * n),
                notes=notes,
            )
            if n == r["test_images"] and abs(p["mse"] - r["mse"]) > 1e-9:
                raise ValueError(f"{cached}: MSE {p['mse']} differs from the recorded {r['mse']}")
            # the coded size is for all 10,000 digits even under --limit: keep the recorded per-image figures
            p["whole_bytes_per_image"], p["coded_bytes_per_image"] = r["bytes_per_image"], r["coded_bytes_per_image"]
        else:
            p = {
                "family": record["family"],
                "codec": "TFC baseline",
                "parameter": f"lambda {r['lambda']:g}",
                "whole_bytes": round(r["bytes_per_image"] * r["test_images"]),
                "whole_bytes_per_image": r["bytes_per_image"],
                "coded_bytes_per_image": r["coded_bytes_per_image"],
                "folder_xz_bytes_per_image": None,
                "mse": r["mse"],
                "psnr_db": r["psnr_db"],
                "classifier_accuracy": None,
                "notes": notes + " (decoded digits not cached: accuracy unknown)",
                "seconds_encode_decode": None,
            }
        out.append(p)
    return out


WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
JPEG_QUALITIES = (5, 10, 20, 30, 50, 70, 90, 95)
AVIF_QUALITIES = (0, 25, 50, 75, 95)
PCA_STEPS = (3.2, 1.6, 0.8, 0.4, 0.2, 0.1)


def sweep(
    basis: PCABasis | None, webp=WEBP_QUALITIES, jpeg=JPEG_QUALITIES, avif=AVIF_QUALITIES, pca_steps=PCA_STEPS
) -> list:
    """Every classic codec point and the PCA baseline's, in plot order (basis=None skips PCA)."""
    codecs: list = [classic.PNG(), classic.WebPLossless(), classic.XZRaw()]
    codecs += [classic.WebP(q) for q in webp]
    codecs += [classic.JPEG(q) for q in jpeg]
    codecs += [classic.AVIF(q) for q in avif]
    if basis is not None:
        codecs += [PCA(basis, s, "ans") for s in pca_steps]
        codecs += [PCA(basis, s, "xz") for s in pca_steps]
    return codecs


def classic_points(images, labels, basis, quick: bool) -> list[dict]:
    if quick:  # a smoke run: two points per sweep
        codecs = sweep(basis, webp=(0, 50), jpeg=(10, 50), avif=(0, 50), pca_steps=(0.8, 0.2))
    else:
        codecs = sweep(basis)
    out = []
    for c in codecs:
        start = time.perf_counter()
        r = c.run(images)
        seconds = time.perf_counter() - start
        out.append(
            point(
                r.codec,
                r.codec,
                r.parameter,
                images,
                labels,
                r.decoded,
                r.whole_bytes,
                coded_bytes=r.coded_bytes,
                folder_xz_bytes=r.folder_xz_bytes,
                notes=r.notes,
                seconds=seconds,
            )
        )
        print(
            f"  {r.codec} {r.parameter}: {out[-1]['whole_bytes_per_image']:.1f} B/img, "
            f"{out[-1]['psnr_db'] or float('inf'):.2f} dB ({seconds:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return out


def _curve(points: list[dict], family: str, key: str = "whole_bytes_per_image"):
    chosen = [p for p in points if p["family"] == family and p["psnr_db"] is not None and p[key] is not None]
    return [p[key] for p in chosen], [p["psnr_db"] for p in chosen]


def compare(points: list[dict], ours: str = AEC_FAMILY) -> dict:
    """An aec curve against every other lossy curve (not aec's own): BD-rate where computable, and the bytes
    each needs at aec's PSNR."""
    aec_rates, aec_psnrs = _curve(points, ours)
    others = [
        f for f in dict.fromkeys(p["family"] for p in points) if not f.startswith(AEC_FAMILY) and _curve(points, f)[0]
    ]
    comparisons = {}
    for family in others:
        rates, psnrs = _curve(points, family)
        entry: dict = {
            "points": len(rates),
            "pareto_points": len(pareto(rates, psnrs)[0]),
            "psnr_range_db": [min(psnrs), max(psnrs)],
        }
        try:
            entry["bd_rate_percent"] = bd_rate(rates, psnrs, aec_rates, aec_psnrs)
        except ValueError as err:
            entry["bd_rate_percent"] = None
            entry["bd_rate_not_computable"] = f"{err} [{family} first, aec second]"
        try:
            entry["bd_rate_pchip_percent"] = bd_rate_pchip(rates, psnrs, aec_rates, aec_psnrs)
        except ValueError as err:
            entry["bd_rate_pchip_percent"] = None
            entry["bd_rate_pchip_not_computable"] = f"(PCHIP) {err} [{family} first, aec second]"
        at = []
        for r, p in zip(aec_rates, aec_psnrs):
            need = rate_at_psnr(rates, psnrs, p)
            row = {
                "aec_psnr_db": p,
                "aec_bytes_per_image": r,
                "other_bytes_per_image_at_that_psnr": need,
                "ratio_other_over_aec": None if need is None else need / r,
            }
            if need is None:
                row["why_none"] = f"{p:.2f} dB is outside {family}'s range {min(psnrs):.2f}-{max(psnrs):.2f} dB"
            if family == "WebP":  # the folder-archive view of the same curve
                fx_rates, fx_psnrs = _curve(points, family, "folder_xz_bytes_per_image")
                fx = rate_at_psnr(fx_rates, fx_psnrs, p)
                row["webp_folder_xz_bytes_per_image_at_that_psnr"] = fx
                row["ratio_webp_folder_xz_over_aec"] = None if fx is None else fx / r
            at.append(row)
        entry["at_aec_points"] = at
        comparisons[family] = entry
    return comparisons


def _fmt(value, digits=2):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.1f}x"


def markdown(results: dict) -> str:
    lines = [
        f"Rate-distortion on the {results['test_images']:,} MNIST test digits "
        f"(reference classifier on the originals: {results['classifier']['accuracy_on_originals'] * 100:.2f}%).",
        "",
        "| codec | parameter | whole-file B/img | coded B/img | folder xz B/img | MSE [0,1] | PSNR dB "
        "| classifier accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in results["points"]:
        lines.append(
            f"| {p['codec']} | {'-' if p['parameter'] is None else p['parameter']} "
            f"| {_fmt(p['whole_bytes_per_image'])} "
            f"| {_fmt(p['coded_bytes_per_image'])} | {_fmt(p['folder_xz_bytes_per_image'])} | {p['mse']:.5f} "
            f"| {'lossless' if p['psnr_db'] is None else _fmt(p['psnr_db'])} "
            f"| {_pct(p['classifier_accuracy'])} |"
        )
    for ours, comparisons in results["comparisons_by_effort"].items():
        lines += _comparison_lines(ours, comparisons)
    return "\n".join(lines) + "\n"


def _comparison_lines(ours: str, comparisons: dict) -> list[str]:
    lines = [
        "",
        f"`{ours}` against the other lossy curves (whole-file bytes):",
        "",
        "| other curve | points (Pareto) | PSNR range dB | BD-rate of aec (cubic) | BD-rate of aec (PCHIP) "
        "| aec point | other's B/img at aec's PSNR | ratio other / aec |",
        "| --- | ---: | --- | --- | --- | --- | ---: | ---: |",
    ]
    for family, c in comparisons.items():
        bd = f"{c['bd_rate_percent']:+.1f}%" if c["bd_rate_percent"] is not None else "not computable*"
        bd_pchip = (
            f"{c['bd_rate_pchip_percent']:+.1f}%" if c["bd_rate_pchip_percent"] is not None else "not computable*"
        )
        for row in c["at_aec_points"]:
            lines.append(
                f"| {family} | {c['points']} ({c['pareto_points']}) "
                f"| {c['psnr_range_db'][0]:.2f}-{c['psnr_range_db'][1]:.2f} "
                f"| {bd} | {bd_pchip} | {row['aec_bytes_per_image']:.2f} B, {row['aec_psnr_db']:.2f} dB "
                f"| {_fmt(row['other_bytes_per_image_at_that_psnr'])} | {_ratio(row['ratio_other_over_aec'])} |"
            )
    reasons = {
        c.get(k) for c in comparisons.values() for k in ("bd_rate_not_computable", "bd_rate_pchip_not_computable")
    } - {None}
    if reasons:
        lines += ["", "\\* BD-rate not computable:", ""] + [f"- {r}" for r in sorted(reasons)]
    webp = comparisons.get("WebP")
    if webp:
        for row in webp["at_aec_points"]:
            if row.get("webp_folder_xz_bytes_per_image_at_that_psnr") is not None:
                lines.append(
                    f"\nWebP with its files xz-compressed together (folder archive) "
                    f"at {row['aec_psnr_db']:.2f} dB: "
                    f"{row['webp_folder_xz_bytes_per_image_at_that_psnr']:.2f} B/img, "
                    f"{row['ratio_webp_folder_xz_over_aec']:.1f}x aec's whole file."
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="an extra aec model file (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test digits (smoke runs)")
    parser.add_argument("--quick", action="store_true", help="two points per classic sweep (smoke runs)")
    parser.add_argument("--efforts", default="0,1,2", help="pack efforts to measure, comma-separated")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "rate_distortion.png")
    args = parser.parse_args()
    command = command_line()

    started = time.perf_counter()
    images, labels = load_mnist("test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    train_images, _ = load_mnist("train")
    basis = PCABasis.fit(train_images, 32)
    clf_facts = reference_classifier.facts() if reference_classifier.CACHE.exists() else None
    original_accuracy = reference_classifier.accuracy(images, labels)
    clf_facts = clf_facts or reference_classifier.facts()

    efforts = [int(e) for e in args.efforts.split(",")]
    points = aec_points(images, labels, args.model, efforts)
    points.append(seed_point(images, labels))
    points += tfc_points(images, labels)
    points += classic_points(images, labels, basis, args.quick)
    results = {
        "command": command,
        "versions": _versions(),
        "test_images": len(images),
        "classifier": {**clf_facts, "accuracy_on_originals": original_accuracy},
        "seed_autoencoder": seed_autoencoder.facts(),
        "points": points,
        "comparisons": compare(points),  # effort 0, as before
        "comparisons_by_effort": {aec_family(e): compare(points, aec_family(e)) for e in efforts},
        "bd_rate_method": "VCEG-M33: cubic fit of ln(bytes) against PSNR over the common PSNR range, "
        f"Pareto points only, >= {MIN_POINTS} points per curve (aec.metrics); "
        "bd_rate_pchip_percent: the same with ln(bytes) interpolated by PCHIP (Fritsch-Carlson, "
        f"as in VCEG-AL22), >= {PCHIP_MIN_POINTS} points per curve",
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results("rd", results, args.out_dir / "rd.json", allow_nan=False)
    table = markdown(results)
    (args.out_dir / "rd.md").write_text(f"Command: `{command}`\n\n" + table)
    plot(results, args.plot)
    print(table)
    print(f"wrote {args.out_dir / 'rd.json'}, {args.out_dir / 'rd.md'}, {args.plot} in {results['seconds']} s")


def _versions() -> dict:
    out = {"aec": aec.__version__, "numpy": np.__version__, "pillow": PIL.__version__}
    try:
        out["libwebp"] = features.version("webp")
        out["libavif"] = features.version("avif")
        out["libjpeg"] = features.version("jpg")
    except Exception:  # noqa: BLE001 - versions are informative only
        pass
    return out


if __name__ == "__main__":
    main()
