"""The foundation benchmark: the 10,000 MNIST test digits as PNG files, packed and unpacked by the CLI.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.mnist_testset [--model NAME|FILE] [--json OUT]
        [--labelled-names]

--labelled-names writes 00000_7.png ... (each digit's label in its name, as
MNIST's PNG exports often do) instead of 00000.png: the names table then
holds about 3.3 bits of label a name, which the whole-file bytes include.

Reports whole-file and coded-latent bytes per image, ratios against raw
pixels, the PNG folder and its tar.gz, MSE/PSNR, that every name came back,
that unpack ran without TensorFlow, and cold-start times of `aec info`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

from aec.datasets import load_mnist
from aec.metrics import mse, psnr

from ..common import folder_bytes, read_folder, results_path, write_results

AEC = [sys.executable, "-m", "aec"]
NO_TF_PROBE = (
    "import sys\nfrom aec.cli.main import app\n"
    "try:\n    app(sys.argv[1:], prog_name='aec')\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
    "print('tensorflow' in sys.modules or 'keras' in sys.modules)\n"
)


def timed(cmd: list) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {done.stderr}")
    return seconds, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", type=Path, default=results_path("mnist_testset"))
    parser.add_argument("--labelled-names", action="store_true", help="name the files 00000_7.png ...")
    args = parser.parse_args()
    images, labels = load_mnist("test")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "mnist-test"
        src.mkdir()
        if args.labelled_names:
            names = [f"{i:05d}_{label}.png" for i, label in enumerate(labels.tolist())]
        else:
            names = [f"{i:05d}.png" for i in range(len(images))]
        for name, image in zip(names, images):
            Image.fromarray(image, "L").save(src / name)
        png_bytes = folder_bytes(src)
        tgz = io.BytesIO()
        with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
            tar.add(src, arcname="mnist-test")
        archive = tmp / "mnist-test.aec"
        model = ["--model", args.model] if args.model else []
        pack_s, _ = timed(AEC + ["pack", src, "-o", archive, "-q"] + model)
        unpack_s, probe = timed([sys.executable, "-c", NO_TF_PROBE, "unpack", archive, "-o", tmp / "out", "-q"] + model)
        tf_loaded = probe.stdout.strip().splitlines()[-1] == "True"
        back = sorted(p.name for p in (tmp / "out").iterdir())
        decoded = read_folder(tmp / "out", names)
        _, info = timed(AEC + ["info", archive, "--json"])
        facts = json.loads(info.stdout)
        info_times = [timed(AEC + ["info", archive])[0] for _ in range(5)]
        floor_times = [timed([sys.executable, "-c", "import numpy, PIL.Image, h5py"])[0] for _ in range(5)]
    n = len(images)
    err = mse(images, decoded)
    results = {
        "images": n,
        "names": "00000_7.png ..." if args.labelled_names else "00000.png ...",
        "every_name_back": back == names,
        "names_bytes_per_image": facts["names_bytes"] / n,
        "aec_file_bytes": facts["total_bytes"],
        "bytes_per_image": facts["total_bytes"] / n,
        "latent_bytes_per_image": facts["latent_bytes"] / n,
        "overhead_bytes": facts["total_bytes"] - facts["latent_bytes"],
        "mse": err,
        "psnr_db": psnr(err),
        "ratio_vs_raw": n * 784 / facts["total_bytes"],
        "ratio_vs_png_folder": png_bytes / facts["total_bytes"],
        "png_folder_bytes_per_image": png_bytes / n,
        "tar_gz_bytes_per_image": len(tgz.getvalue()) / n,
        "pack_seconds": pack_s,
        "unpack_seconds": unpack_s,
        "unpack_imported_tensorflow": tf_loaded,
        "info_cold_start_seconds_median": statistics.median(info_times),
        "import_floor_seconds_median": statistics.median(floor_times),
        "model": facts["model"],
        "model_fingerprint": facts["model_fingerprint"],
    }
    write_results("mnist_testset", results, args.json)
    print("| figure | value |\n| --- | --- |")
    for key, value in results.items():
        print(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")


if __name__ == "__main__":
    main()
