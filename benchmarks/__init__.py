"""aec's benchmarks, grouped by what they measure. Run each from the repository root as a module
(`--help` for its options); most need AEC_DATA=path/to/mnist:

    python -m benchmarks.rd.benchmark                # rate-distortion: aec against classic codecs and baselines
    python -m benchmarks.rd.plot                     # docs/rate_distortion.png from results/rd.json
    python -m benchmarks.rd.mnist_testset            # the 10,000 test digits through the command line (make bench)
    python -m benchmarks.rd.figure                   # docs/reconstructions.png (make figure)
    python -m benchmarks.rd.compare_folders A B F    # originals against unpacked (make demo)
    python -m benchmarks.rd.reference_classifier     # trains the classifier the RD benchmark scores with
    python -m benchmarks.rd.seed_autoencoder         # trains the seed baseline
    python -m benchmarks.rd.tfc_baseline train ...   # trains and codes the TensorFlow Compression baseline
    python -m benchmarks.speed.throughput            # speed and memory against the floors aec cannot beat
    python -m benchmarks.speed.archive               # list, extract one member, random reads on a 1M-image file
    python -m benchmarks.speed.cat                   # aec cat of two 1M-image files, chunks copied or cut anew
    python -m benchmarks.speed.cluster               # pack on a local Dask cluster, 1 vs 2 workers, against Ray
    python -m benchmarks.robustness.hostile_containers
    python -m benchmarks.robustness.kill_test
    python -m benchmarks.robustness.decode_stability
    python -m benchmarks.robustness.exact_decoder    # exact against float decoders: PSNR, speed, sameness under BLAS kernels

Results go to benchmarks/results/ through benchmarks.common.write_results; benchmarks/RESULTS.md discusses them.
Tests of the benchmarks' own baselines: python -m pytest benchmarks.
"""
