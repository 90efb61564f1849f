"""A killed pack or unpack leaves no partial file under a final name (benchmarks/kill_test.py does 50 of each)."""

import numpy as np
import pytest

from .killing import kill_pack_once, kill_unpack_once, make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory, example_images):
    # Big enough that pack (now ~0.4 s + 50 us per file here) is still busy when the kills land.
    return make_folder(tmp_path_factory.mktemp("kill") / "src", example_images, 12000)


@pytest.mark.slow
def test_killed_pack_leaves_no_partial_output(folder, tmp_path):
    rng = np.random.default_rng(7)
    outcomes = [kill_pack_once(folder, tmp_path / "out.aec", float(rng.uniform(0.3, 1.0))) for _ in range(6)]
    assert "killed" in outcomes  # the test did interrupt real work


@pytest.mark.slow
def test_killed_unpack_leaves_no_partial_png(folder, tmp_path):
    import codec

    archive = tmp_path / "a.aec"
    codec.pack([folder], archive)
    rng = np.random.default_rng(8)
    outcomes = []
    for _ in range(6):
        outcome, partial = kill_unpack_once(archive, tmp_path / "out", float(rng.uniform(0.4, 1.6)))
        assert partial == []
        outcomes.append(outcome)
    assert "killed" in outcomes
