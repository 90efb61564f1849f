"""The layout: one import package, no import cycles, internal imports at the top of modules."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Repository folder -> the module name it installs as (pyproject.toml, [tool.setuptools] package-dir).
FOLDERS = {"codec": "aec", "cli": "aec.cli", "weights": "aec.weights"}
# Internal modules that may be imported inside a function, and why: TensorFlow is slow to import
# and only `aec train` needs it; the classic codecs (`aec bench`), the downloaders (`aec
# fetch-mnist`) and the contact sheet's Pillow drawing and dataset reader (`aec show`) would cost
# every other command's start-up (benchmarks/RESULTS.md, speed).
LAZY_ALLOWED = ("aec.training", "aec.bench", "aec.fetch", "aec.sheet")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported aec module, whether the import is inside a function) for every import in the file."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names if a.name.split(".")[0] == "aec")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parent = base.split(".")
                    parent = parent[: len(parent) - (child.level - 1)]
                    module = ".".join(parent + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                if module.split(".")[0] != "aec":
                    continue
                for alias in child.names:  # `from . import runtime` imports a module, not a name
                    sub = f"{module}.{alias.name}"
                    found.append((sub if sub in MODULES else module, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _resolve(module: str) -> str:
    while module not in MODULES and "." in module:
        module = module.rpartition(".")[0]
    return module


def test_no_import_cycle_between_modules():
    graph = {name: {_resolve(m) for m, _ in _imports(name, path)} - {name} for name, path in MODULES.items()}
    # Importing a submodule runs its package's __init__ first, and aec/__init__ imports the API.
    for name in graph:
        parent = name.rpartition(".")[0]
        if parent in MODULES and parent != "aec":
            graph[name].add(parent)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_internal_modules_are_imported_at_the_top():
    hidden = [
        f"{path.relative_to(ROOT)} imports {module} inside a function"
        for name, path in MODULES.items()
        for module, in_function in _imports(name, path)
        if in_function and not module.startswith(LAZY_ALLOWED)
    ]
    assert not hidden, "\n".join(hidden)


def test_no_library_module_is_too_long():
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > 400
    ]
    assert not long, "one module, one job: " + "; ".join(long)


@pytest.mark.slow
def test_pip_install_adds_exactly_one_top_level_package(tmp_path):
    """A wheel of the project, installed into a fresh virtual environment, adds `aec` and its metadata only."""
    # From a copy of the sources: a build/ folder left in the checkout would leak into the wheel.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "demo-out"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("aec_codec-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, json; d = m.distribution('aec-codec'); "
            "print(json.dumps([str(f) for f in d.files])); print(d.entry_points['aec'].value)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: its own *.egg-info would answer for the distribution
    ).stdout.splitlines()
    files = json.loads(listing[0])
    top = {f.split("/")[0] for f in files if not f.startswith("..")}  # "../../../bin/aec": the command
    assert {t for t in top if not t.endswith(".dist-info")} == {"aec"}, top
    assert listing[1] == "aec.cli.main:run"
    assert {"aec/weights/mnist-q3.h5", "aec/weights/index.json", "aec/cli/main.py", "aec/__main__.py"} <= set(files)
