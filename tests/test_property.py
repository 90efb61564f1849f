"""Property test: any images under any names pack accepts come back under the same names, decoded as aec.decode does."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import aec
from aec.name_rules import output_name, pack_problem

# Path components: any printable unicode except '/', backslash and control
# characters; not '.', '..', nor starting with '.' (hidden files are skipped).
component = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda s: not s.startswith(".") and s.strip() == s and len(s.encode()) < 60)
name = (
    st.lists(component, min_size=1, max_size=3)
    .map(lambda parts: "/".join(parts) + ".png")
    .filter(lambda n: pack_problem(n) is None)  # NFC, nothing hidden, nothing Windows cannot create
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    images=arrays(np.uint8, st.tuples(st.integers(1, 6), st.just(28), st.just(28))),
    names=st.lists(name, min_size=6, max_size=6, unique_by=lambda n: output_name(n).casefold()),
)
def test_random_images_and_names_round_trip(tmp_path_factory, images, names):
    names = names[: len(images)]
    # No name may be a folder of another (a/b.png and a/b.png/c.png cannot both be files).
    prefixes = {p for n in names for p in [n.rsplit("/", i)[0] for i in range(1, n.count("/") + 1)]}
    if any(output_name(n) in prefixes or n in prefixes for n in names):
        return
    assert all(pack_problem(n) is None for n in names)
    root = tmp_path_factory.mktemp("prop")
    src = root / "src"
    for n, image in zip(names, images):
        (src / n).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(src / n)
    aec.pack([src], root / "p.aec", invert="never")
    aec.unpack(root / "p.aec", root / "out")
    got = sorted(p.relative_to(root / "out").as_posix() for p in (root / "out").rglob("*") if p.is_file())
    assert got == sorted(output_name(n) for n in names)
    expected = aec.decode(aec.encode(images))
    for i in range(len(names)):
        decoded = np.asarray(Image.open(root / "out" / output_name(names[i])))
        assert np.array_equal(decoded, expected[i])
