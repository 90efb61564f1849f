"""The fast paths over the names table (bulk rebuild and checks, exact-name search, piecewise cat) give what the
name-by-name rules give: the same names, the same refusals."""

from __future__ import annotations

import lzma

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aec
from aec import name_rules, namebulk, names
from aec.errors import AecError, ContainerError
from aec.fileinfo import member_chunks
from aec.testing.hostile import raw_names, with_raw_names

RAW_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]


def front_coded(table: list[bytes]) -> bytes:
    """Front-coded records, the shared counts as a writer that shares as much as it may (no checks)."""
    out, previous = bytearray(), b""
    for name in table:
        shared = 0
        while shared < min(len(previous), len(name), 255) and previous[shared] == name[shared]:
            shared += 1
        out += bytes([shared]) + name[shared:] + b"\0"
        previous = name
    return bytes(out)


def read(table: list[bytes]) -> list[str]:
    raw = front_coded(table)
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=RAW_FILTERS)
    return names.decode_table(blob, len(raw), len(table))


_part = st.text(alphabet="ab.:/\\\x01\x7f é\u202e日", min_size=0, max_size=6)


@settings(max_examples=400, deadline=None)
@given(st.lists(_part, min_size=1, max_size=30, unique=True))
def test_fast_and_slow_name_checks_agree(table):
    table = [t for t in table if "\0" not in t]
    encoded = [t.encode("utf-8") for t in table]
    problems = [name_rules.check_name(t) for t in table]
    if any(problems):
        with pytest.raises(ContainerError, match="names table"):
            read(encoded)
    else:
        assert read(encoded) == table
    for name, problem in zip(encoded, problems):  # one name alone: the bulk check proves it fine or says to look
        rows = np.zeros((1, -(-(len(name) + 1) // 8) * 8), np.uint8)
        rows[0, : len(name)] = np.frombuffer(name, np.uint8)
        lengths = np.array([len(name)])
        fine = len(name) > 0 and namebulk.plainly_fine(rows, lengths, name + b"\0", name_rules.MAX_NAME_BYTES)
        assert not fine or problem is None  # never passes what the rules refuse
        if problem is None and not set(name) & set(b":."):
            assert fine  # and passes the plain ones


def test_many_names_take_the_fast_path_and_read_back():
    table = [f"d{i // 1000}/{i:06d}.png" for i in range(30_000)] + ["é/x.png", "a" * 300 + "/b.png"]
    assert read([t.encode() for t in table]) == table
    writer = names.TableWriter()
    for t in table:
        writer.add(t)
    blob, raw_length = writer.finish()
    pieces = list(names.table_pieces(blob, raw_length, len(table), piece=1 << 16))
    assert len(pieces) > 1 and [n for p in pieces for n in p.names()] == table
    assert np.concatenate([p.hashes for p in pieces]).tolist() == [names.hash_name(t) for t in table]
    rewritten = names.TableWriter(threaded=True)
    for p in pieces:
        rewritten.add_piece(p)
    assert rewritten.finish() == (blob, raw_length)  # cat writes what pack writes


@pytest.mark.parametrize("where", [0, 10, 19])
@pytest.mark.parametrize("bad", ["a/../x.png", "/abs.png", "a//b.png", "C:x.png", "a\x01.png", "dup"])
def test_a_bad_or_repeated_name_anywhere_is_refused_by_every_reader(tmp_path, example_images, where, bad):
    table = [f"{i:02d}.png" for i in range(20)]
    table[where] = table[(where + 1) % 20] if bad == "dup" else bad
    path = tmp_path / "evil.aec"
    path.write_bytes(with_raw_names(aec.encode(example_images[:20], chunk_size=8), raw_names(table)))
    member = table[(where + 5) % 20]
    with pytest.raises(AecError):
        aec.unpack(path, tmp_path / "out", members=[member])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(ContainerError, match="names table"):
        list(member_chunks(path))
    with pytest.raises(ContainerError, match="names table"):
        aec.open(path)


def test_one_member_of_many_is_found_by_its_stored_or_written_name(tmp_path, example_images):
    table = [f"{i:05d}.jpg" for i in range(20)]
    path = tmp_path / "f.aec"
    path.write_bytes(
        with_raw_names(aec.encode(example_images[:20], chunk_size=8), front_coded([t.encode() for t in table]))
    )
    result = aec.unpack(path, tmp_path / "out", members=["00017.png"], format="npy")
    assert result.images == 1
    with aec.open(path) as data:
        assert np.array_equal(np.load(tmp_path / "out.npy")[0], data[17])
