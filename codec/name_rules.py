"""What a stored name may be: safe to store and to unpack (check_name, unpack_problem), and what pack
adds for names it stores (pack_problem: visible, NFC, creatable on every common system)."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 4096
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
_BAD_COMPONENT = frozenset(("", ".", ".."))


# Names made only of these, each part starting with a letter, digit, '_' or '-', are safe by
# the rules below; one match is much cheaper than the checks (pack checks every name).
_PLAINLY_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_. -]*(?:/[A-Za-z0-9_-][A-Za-z0-9_. -]*)*")


def check_name(name: str) -> str | None:
    """Why `name` is not a safe stored name, or None if it is.

    Safe: a relative POSIX path, no empty, '.' or '..' parts, no drive
    prefix, no backslash, no control characters, at most MAX_NAME_BYTES.
    """
    if len(name) <= MAX_NAME_BYTES and _PLAINLY_SAFE.fullmatch(name):
        return None
    return name_problem(name)


def name_problem(name: str) -> str | None:
    """check_name's rules one by one, without the shortcut."""
    if not name:
        return "empty name"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return "name too long"
    if _FORBIDDEN.search(name):
        return "control character or backslash in name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if not _BAD_COMPONENT.isdisjoint(name.split("/")):
        return "empty, '.' or '..' path component"
    return None


def unpack_problem(name: str) -> str | None:
    """Why `name` cannot be stored so that unpack can write it, or None: the stored name and the
    .png name unpack writes for it must both be safe (pack checks this; unpack --test too)."""
    problem = check_name(name)
    if problem is None and not name.endswith(".png"):
        problem = check_name(output_name(name))
        if problem:
            problem = f"the file unpack would write for it: {problem}"
    return problem


# Characters a name may hold that change or hide what a person reads: C1 controls, line and
# paragraph separators, and the bidirectional formatting characters (a name could show as another).
_HIDDEN = re.compile("[\u0080-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)


def pack_problem(name: str) -> str | None:
    """Why pack refuses to store `name`, or None: unpack_problem's rules, and a name that shows as what it is
    and unpacks on every common system (NFC, no hidden or direction-changing characters, nothing Windows
    cannot create). Readers still accept older files' names that break only these extra rules."""
    problem = unpack_problem(name)
    if problem:
        return problem
    if _HIDDEN.search(name):
        return "invisible or direction-changing character in name"
    if unicodedata.normalize("NFC", name) != name:
        return "name is not in Unicode normal form NFC"
    for part in output_name(name).split("/"):
        if part.endswith((".", " ")) or name.split("/")[-1].endswith((".", " ")):
            return "a name part ends with a dot or a space (Windows cannot create it)"
        if part.split(".")[0].upper() in _WINDOWS_RESERVED:
            return f"{part.split('.')[0]!r} is a device name on Windows"
    return None


def output_name(name: str) -> str:
    """The file name unpack writes for a stored name: the same path, its suffix (if any) replaced by .png."""
    folder, _, base = name.rpartition("/")
    dot = base.rfind(".")
    stem = base[:dot] if dot > 0 else base
    return f"{folder}/{stem}.png" if folder else f"{stem}.png"


# A name part that pack_problem passes whatever it is: ASCII letters, digits, '_', '-' and dots, not
# starting with a dot, not ending with one, and not a Windows device name (CON, con.png, ...).
_PLAIN_PART = r"(?!(?i:CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(?:\.|/|$))[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?"
_PLAIN_NAME = re.compile(f"{_PLAIN_PART}(?:/{_PLAIN_PART})*")


def plainly_fine_for_pack(names: list[str]) -> bool:
    """Whether every name passes pack_problem and no two unpack to one file, proved at C speed for the
    commonest names (plain ASCII, as a digit dataset's are); False only says to check them one by one
    (_check_names: 3 us a name, most of the listing's time for a big folder)."""
    # -4: a name without a suffix gains ".png" on unpack, and that name must fit too.
    if not names or max(map(len, names)) > MAX_NAME_BYTES - 4 or not all(map(_PLAIN_NAME.fullmatch, names)):
        return False
    written = names if all(name.endswith(".png") for name in names) else [output_name(n) for n in names]
    return len(set(map(str.lower, written))) == len(written)  # ASCII: lower() is casefold()
