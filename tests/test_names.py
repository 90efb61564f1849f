"""aec.names: stored-name safety and the front-coded LZMA names table."""

from __future__ import annotations

import lzma

import pytest

from aec import name_rules, names
from aec.errors import ContainerError, InputError

# The decoder's raw LZMA2 settings, spelled out here so the hand-built tables
# below do not depend on names.py's private constants.
RAW_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]


def raw_compress(raw: bytes) -> bytes:
    return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=RAW_FILTERS)


def front_code(items: list[tuple[int, bytes]]) -> bytes:
    """Raw table bytes from (shared-prefix length, rest) pairs."""
    out = bytearray()
    for shared, rest in items:
        out.append(shared)
        out += rest
        out.append(0)
    return bytes(out)


# --- check_name -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a.png",
        "a/b/c.png",
        "digits/7/00042.png",
        "with space.png",
        "dir with spaces/file name.png",
        "ünïcødé/日本語.png",
        "emoji-\U0001f600.png",
        "no_suffix",
        ".hidden.png",  # a leading dot is allowed in a stored name
        "a..b.png",  # '..' inside a component is not a parent reference
        "x" * name_rules.MAX_NAME_BYTES,  # exactly the limit
    ],
)
def test_check_name_accepts_normal_relative_names(name):
    assert name_rules.check_name(name) is None


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("..", "'..'"),
        (".", "'.'"),
        ("a/../b", "'..'"),
        ("../a.png", "'..'"),
        ("a/..", "'..'"),
        ("/abs", "absolute"),
        ("/", "absolute"),
        ("C:/x", "absolute"),
        ("c:x.png", "absolute"),
        ("a\\b", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\rb", "control"),
        ("a\tb", "control"),
        ("a\x1fb", "control"),
        ("a\x7fb", "control"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("./a", "'.'"),
        ("a/./b", "'.'"),
        ("x" * (name_rules.MAX_NAME_BYTES + 1), "too long"),
        ("é" * (name_rules.MAX_NAME_BYTES // 2 + 1), "too long"),  # 2049 characters, 4098 bytes
    ],
)
def test_check_name_rejects_unsafe_names(name, why):
    problem = name_rules.check_name(name)
    assert problem is not None
    assert why in problem


def test_name_limit_counts_utf8_bytes_not_characters():
    two_byte = "é" * (name_rules.MAX_NAME_BYTES // 2)  # 2048 characters, 4096 bytes: allowed
    assert name_rules.check_name(two_byte) is None
    assert name_rules.check_name(two_byte + "a") == "name too long"


def test_check_name_rejects_name_that_is_not_encodable_utf8():
    assert name_rules.check_name("\udcff.png") is not None


# --- encode_table / decode_table ---------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        ["only.png"],
        ["a.png", "b.png", "c/d.png"],
        ["ünïcødé/日本語.png", "ünïcødé/日本.png", "emoji-\U0001f600.png", "with space/x y.png"],
        ["/".join(f"level{i}" for i in range(200)) + "/leaf.png", "/".join(f"level{i}" for i in range(199)) + "/x.png"],
        ["abcd", "abc", "ab", "a"],  # each name a prefix of the one before: empty rests
        ["z.png", "a.png", "m/n.png"],  # unsorted order is kept
    ],
)
def test_table_round_trip(table):
    blob, raw_length = names.encode_table(table)
    assert isinstance(blob, bytes)
    assert names.decode_table(blob, raw_length, len(table)) == table


def test_raw_length_is_front_coded_size():
    blob, raw_length = names.encode_table(["abc.png", "abd.png"])
    # "abc.png": shared 0, 7 bytes, NUL; "abd.png": shared 2, "d.png", NUL
    assert raw_length == (1 + 7 + 1) + (1 + 5 + 1)
    assert lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=RAW_FILTERS) == b"\x00abc.png\x00\x02d.png\x00"


def test_shared_prefixes_longer_than_255_bytes_round_trip():
    stem = "d" * 300
    table = [f"{stem}/a.png", f"{stem}/b.png", f"{stem}/bb.png"]
    blob, raw_length = names.encode_table(table)
    assert names.decode_table(blob, raw_length, 3) == table
    raw = lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=RAW_FILTERS)
    assert raw[len(table[0]) + 2] == 255  # shared count of the second name is capped at one byte


def test_empty_table_round_trip():
    blob, raw_length = names.encode_table([])
    assert raw_length == 0
    assert names.decode_table(blob, 0, 0) == []


def test_ten_thousand_sequential_names_compress_below_a_tenth_of_a_byte_each():
    table = [f"{i:05d}.png" for i in range(10000)]
    blob, raw_length = names.encode_table(table)
    assert len(blob) < 0.1 * len(table)
    assert names.decode_table(blob, raw_length, len(table)) == table


@pytest.mark.parametrize("bad", ["", "../x.png", "/abs.png", "a\\b.png", "a\nb.png", "a//b.png"])
def test_encode_table_rejects_unsafe_names_with_input_error(bad):
    with pytest.raises(InputError, match="cannot be stored"):
        names.encode_table(["ok.png", bad])


def test_encode_table_rejects_unencodable_name_with_input_error():
    with pytest.raises(InputError):
        names.encode_table(["\udcff.png"])


@pytest.mark.parametrize("delta", [-1, 1, 5])
def test_decode_table_rejects_wrong_raw_length(delta):
    blob, raw_length = names.encode_table(["a.png", "b.png"])
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(blob, raw_length + delta, 2)


def test_decode_table_rejects_truncated_data():
    table = ["a.png", "b.png", "c/d.png", "c/e.png"]
    blob, raw_length = names.encode_table(table)
    for cut in range(len(blob)):
        with pytest.raises(ContainerError, match="names table"):
            names.decode_table(blob[:cut], raw_length, len(table))


def test_decode_table_rejects_garbage():
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(b"\xff" * 40, 20, 2)
    blob, raw_length = names.encode_table(["a.png", "b.png"])
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(b"\x00" + blob, raw_length, 2)


def test_decode_table_bit_flips_raise_container_error_or_decode_exactly():
    table = ["a.png", "b.png", "c/d.png"]
    blob, raw_length = names.encode_table(table)
    rejected = 0
    for i in range(len(blob)):
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[i] ^= 1 << bit
            try:
                decoded = names.decode_table(bytes(damaged), raw_length, len(table))
            except ContainerError:
                rejected += 1
            else:  # the container's CRC is what catches these; the table must at least be the same
                assert decoded == table
    assert rejected >= 0.9 * 8 * len(blob)


def test_decode_table_rejects_stream_without_end_marker():
    blob, raw_length = names.encode_table(["a.png", "b.png"])
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(blob[:-1], raw_length, 2)


def test_decode_table_rejects_bytes_after_stream():
    blob, raw_length = names.encode_table(["a.png", "b.png"])
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(blob + b"junk", raw_length, 2)


def test_decode_table_rejects_huge_claimed_length_without_allocating_it():
    blob, _ = names.encode_table(["a.png", "b.png"])
    with pytest.raises(ContainerError, match="names table"):
        names.decode_table(blob, 2**32 - 1, 2)


def test_decode_table_rejects_name_longer_than_the_limit():
    raw = front_code([(0, b"x" * (name_rules.MAX_NAME_BYTES + 10))])
    with pytest.raises(ContainerError, match=r"names table: .*too long"):
        names.decode_table(raw_compress(raw), len(raw), 1)
    # With no terminator at all the reader gives up once a name passes the limit.
    raw = b"\x00" + b"x" * 100_000
    with pytest.raises(ContainerError, match="names table: name 1 is too long"):
        names.decode_table(raw_compress(raw), len(raw), 1)


@pytest.mark.parametrize("unsafe", [b"../x.png", b"/etc/passwd", b"a\\b", b"a//b", b"./a", b"C:/x"])
def test_decode_table_rejects_unsafe_stored_name(unsafe):
    raw = front_code([(0, b"ok.png"), (0, unsafe)])
    with pytest.raises(ContainerError, match="unsafe name"):
        names.decode_table(raw_compress(raw), len(raw), 2)


def test_decode_table_rejects_unsafe_name_built_from_shared_prefix():
    # "a/" + "../x" only becomes unsafe once the prefix is joined back on.
    raw = front_code([(0, b"a/b.png"), (2, b"../x.png")])
    with pytest.raises(ContainerError, match=r"unsafe name 'a/\.\./x\.png'"):
        names.decode_table(raw_compress(raw), len(raw), 2)


def test_decode_table_accepts_hand_built_table():
    raw = front_code([(0, b"dir/a.png"), (4, b"b.png"), (0, "é.png".encode())])
    assert names.decode_table(raw_compress(raw), len(raw), 3) == ["dir/a.png", "dir/b.png", "é.png"]


def test_decode_table_rejects_duplicates():
    raw = front_code([(0, b"a.png"), (0, b"b.png"), (5, b"")])  # third name repeats "b.png"
    with pytest.raises(ContainerError, match="duplicate"):
        names.decode_table(raw_compress(raw), len(raw), 3)
    blob, raw_length = names.encode_table(["x.png", "x.png"])  # encoder does not police duplicates
    with pytest.raises(ContainerError, match="duplicate"):
        names.decode_table(blob, raw_length, 2)


def test_names_in_increasing_order_prove_unique_and_a_repeat_among_them_is_still_found():
    ordered = [f"{i:06d}.png" for i in range(20000)]  # pieces of the fast path, in increasing byte order
    blob, raw_length = names.encode_table(ordered)
    pieces = list(names.table_pieces(blob, raw_length, len(ordered)))
    assert all(p.ascending for p in pieces) and [n for p in pieces for n in p.names()] == ordered
    for repeated in (ordered[:100] + ordered[99:], ordered[:5000] + ordered[:1]):  # next to each other, or far
        blob, raw_length = names.encode_table(repeated)
        with pytest.raises(ContainerError, match="duplicate"):
            list(names.table_pieces(blob, raw_length, len(repeated)))
    # Not every shared prefix is the longest: a name that shares less and then repeats the byte is not
    # taken as greater, and the hashes decide (here: unique).
    raw = front_code([(0, b"ab.png"), (1, b"bc.png")])
    assert names.decode_table(raw_compress(raw), len(raw), 2) == ["ab.png", "abc.png"]


def test_decode_table_rejects_trailing_bytes_after_last_name():
    raw = front_code([(0, b"a.png"), (0, b"b.png")])
    with pytest.raises(ContainerError, match="does not end where the header says"):
        names.decode_table(raw_compress(raw), len(raw), 1)
    raw_extra = raw + b"\x07"
    with pytest.raises(ContainerError, match="does not end where the header says"):
        names.decode_table(raw_compress(raw_extra), len(raw_extra), 2)


def test_decode_table_rejects_too_few_names():
    raw = front_code([(0, b"a.png")])
    with pytest.raises(ContainerError, match="ends before name 2 of 2"):
        names.decode_table(raw_compress(raw), len(raw), 2)
    unterminated = b"\x00a.png"
    with pytest.raises(ContainerError, match="ends before name 1 of 1"):
        names.decode_table(raw_compress(unterminated), len(unterminated), 1)


def test_decode_table_rejects_prefix_longer_than_previous_name():
    raw = front_code([(0, b"ab"), (3, b"c")])
    with pytest.raises(ContainerError, match="name 2 shares more"):
        names.decode_table(raw_compress(raw), len(raw), 2)


def test_decode_table_rejects_invalid_utf8():
    raw = front_code([(0, b"a\xff.png")])
    with pytest.raises(ContainerError, match="not UTF-8"):
        names.decode_table(raw_compress(raw), len(raw), 1)


# --- check_name's shortcut -----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_tricky = st.text(alphabet="ab0_-. /\\:\x00\n", max_size=12)


@settings(max_examples=2000, deadline=None)
@given(_tricky)
def test_check_name_shortcut_never_accepts_what_the_rules_refuse(name):
    assert name_rules.check_name(name) == name_rules.name_problem(name)


def test_check_name_shortcut_takes_plain_names():
    assert name_rules._PLAINLY_SAFE.fullmatch("digits/7/00001.png")
    assert not name_rules._PLAINLY_SAFE.fullmatch("digits/./00001.png")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_shared_prefix_is_the_common_prefix_up_to_255(a, b):
    expected = 0
    while expected < min(len(a), len(b), 255) and a[expected] == b[expected]:
        expected += 1
    assert names._shared_prefix(a, b) == expected
    assert names._shared_prefix(a, a) == min(len(a), 255)


# --- what pack refuses to store, beyond what readers accept --------------------------


@pytest.mark.parametrize(
    "name, why",
    [
        ("a\u0085b.png", "invisible or direction-changing"),
        ("line\u2028sep.png", "invisible or direction-changing"),
        ("evil\u202egnp.exe.png", "invisible or direction-changing"),
        ("cafe\u0301.png", "not in Unicode normal form NFC"),
        ("CON.png", "device name on Windows"),
        ("dir/aux", "device name on Windows"),
        ("LPT1/x.png", "device name on Windows"),
        ("trailing./x.png", "ends with a dot or a space"),
        ("trailing .png ", "ends with a dot or a space"),
    ],
)
def test_pack_refuses_names_that_hide_or_do_not_unpack_everywhere(tmp_path, name, why):
    from aec.inputs import collect_inputs

    assert name_rules.pack_problem(name) is not None and why in name_rules.pack_problem(name)
    assert name_rules.check_name(name) is None  # readers still accept such names in older files
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=why):
        collect_inputs([tmp_path / "in"])


def test_plain_and_nfc_names_are_fine():
    for name in ("café.png", "Ünïcode/数字 7.png", "console.png", "a.b.c.png", "com10.png"):
        assert name_rules.pack_problem(name) is None, name


def test_names_that_differ_only_in_case_are_refused(tmp_path):
    from aec.inputs import collect_inputs

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Seven.png").write_bytes(b"x")
    (tmp_path / "in" / "seven.png").write_bytes(b"x")
    with pytest.raises(InputError, match="same file as .* on a case-insensitive file system"):
        collect_inputs([tmp_path / "in"])


# --- pack's bulk shortcuts ----------------------------------------------------

_pack_pieces = ["a", "B", "0", "_", "-", ".", " ", "/", "é", "\u202e", "con", "LPT1", "png", "1"]
_pack_tricky = st.lists(st.sampled_from(_pack_pieces), max_size=8).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_pack_tricky, min_size=1, max_size=4))
def test_pack_shortcut_never_passes_names_the_rules_refuse(listed):

    if name_rules.plainly_fine_for_pack(listed):
        assert all(name_rules.pack_problem(n) is None for n in listed)
        written = [name_rules.output_name(n).casefold() for n in listed]
        assert len(set(written)) == len(written)


def test_pack_shortcut_takes_plain_digit_names_and_leaves_the_rest_to_the_rules():

    assert name_rules.plainly_fine_for_pack(
        [f"{i:05d}_{i % 10}.png" for i in range(1000)] + ["train/7/x.jpg", "COM10.png"]
    )
    for unusual in (["con.png"], ["a/NUL/b.png"], ["x."], ["a b.png"], ["é.png"], ["a.png", "A.png"]):
        assert not name_rules.plainly_fine_for_pack(unusual), unusual
    assert not name_rules.plainly_fine_for_pack(["a.png", "a.jpg"])  # both unpack to a.png
    assert not name_rules.plainly_fine_for_pack(["x" * (name_rules.MAX_NAME_BYTES - 3)])  # x...x.png would be too long


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab/é.", min_size=1, max_size=300), unique=True, max_size=20), st.integers(1, 7))
def test_add_many_writes_what_add_writes(listed, step):
    one, many = names.TableWriter(), names.TableWriter()
    for name in listed:
        one.add(name, checked=True)
    for start in range(0, len(listed), step):
        many.add_many(listed[start : start + step])
    assert many.finish() == one.finish() and many.count == one.count


def test_table_bytes_do_not_depend_on_how_the_names_are_fed_to_lzma(monkeypatch):
    listed = [f"digits/{i % 10}/{i:06d}.png" for i in range(20000)]
    tables = []
    for feed in (1 << 6, 1 << 13, 1 << 30):
        monkeypatch.setattr(names, "_FEED_BYTES", feed)
        tables.append(names.encode_table(listed))
    assert tables[0] == tables[1] == tables[2]
    assert names.decode_table(tables[0][0], tables[0][1], len(listed)) == listed
