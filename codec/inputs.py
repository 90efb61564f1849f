"""What pack reads: files and folders expanded into inputs with their stored names.

Rules (README "Input rules"):
- a folder is walked recursively in sorted order; names are kept relative to it;
- hidden files and folders (name starts with '.') are skipped and counted;
- symbolic links to files are followed; links to folders are not walked (no loops)
  and are listed in linked_folders_skipped;
- every other file is an input: it is packed or the pack fails naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, list_problems
from .name_rules import output_name, pack_problem, plainly_fine_for_pack


@dataclass
class InputList:
    # In pack order, as strings: 10,000 Path objects (made, then turned back into strings
    # for the reader processes) cost 50 ms of pack's 0.7 s.
    files: list[str]
    names: list[str]  # stored relative POSIX names, same order
    hidden_skipped: list[Path] = field(default_factory=list)
    linked_folders_skipped: list[Path] = field(default_factory=list)
    unlisted: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be read, and why


def _walk(root: Path, hidden: list[Path], links: list[Path], unlisted: list[tuple[Path, str]]) -> list[tuple[str, str]]:
    """(stored name, path) of every file under `root`, folders in sorted pre-order, files sorted in each.

    Iterative, not os.walk: a folder 2,000 levels deep must not exhaust Python's recursion, and a folder
    that cannot be listed (no permission, a path longer than the system allows) must be reported, not
    skipped in silence.
    """
    found = []
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        sep = "" if folder.endswith(os.sep) else os.sep
        try:
            with os.scandir(folder) as it:
                entries = sorted((e.name, e.is_dir(), e.is_symlink()) for e in it)  # by name: names are unique
        except OSError as err:
            unlisted.append((Path(folder), f"cannot list this folder ({err.strerror or err})"))
            continue
        subfolders = []
        for name, is_dir, is_link in entries:
            if name.startswith("."):
                hidden.append(Path(folder) / name)
            elif is_dir and is_link:
                links.append(Path(folder) / name)  # not walked: no loops, nothing outside the folder given
            elif is_dir:
                subfolders.append((os.path.join(folder, name), f"{prefix}{name}/"))
            else:
                found.append((prefix + name, f"{folder}{sep}{name}"))  # os.path.join, 1 us faster
        stack.extend(reversed(subfolders))
    return found


def collect_inputs(paths: list[str | os.PathLike], skip_unlisted: bool = False) -> InputList:
    """Expand files and folders into the ordered list of inputs with stored names. A folder that cannot be
    listed fails the whole call, naming it, unless `skip_unlisted` (then it is in .unlisted)."""
    entries: list[tuple[str, str]] = []
    hidden: list[Path] = []
    links: list[Path] = []
    unlisted: list[tuple[Path, str]] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            entries += _walk(path, hidden, links, unlisted)
        elif path.is_file():
            entries.append((path.name, os.fspath(path)))
        elif path.exists():
            raise InputError(f"{path}: not a regular file or folder")
        else:
            raise InputError(f"{path}: no such file or folder")
    if unlisted and not skip_unlisted:
        shown = [f"{folder}: {why}" for folder, why in unlisted]
        raise InputError(
            f"{len(unlisted)} folders cannot be read (--skip-invalid packs the rest): {list_problems(shown)}"
        )
    if not entries:
        raise InputError(f"{', '.join(map(str, paths))}: no input files found")
    if not plainly_fine_for_pack([name for name, _ in entries]):
        _check_names(entries)
    return InputList([p for _, p in entries], [n for n, _ in entries], hidden, links, unlisted)


def _check_names(entries: list[tuple[str, str]]) -> None:
    """Every name storable, and no two unpacking to one file (also on a case-insensitive file system)."""
    seen: dict[str, tuple[str, str]] = {}
    for name, path in entries:
        problem = pack_problem(name)
        if problem:
            raise InputError(f"{path}: name cannot be stored ({problem})")
        written = output_name(name)
        key = written.casefold()  # one file on case-insensitive file systems (macOS, Windows)
        if key in seen:
            other, other_path = seen[key]
            if other == written:
                raise InputError(f"{path}: would unpack to the same {written} as {other_path}")
            raise InputError(f"{path}: would unpack to the same file as {other_path} on a case-insensitive file system")
        seen[key] = written, path
