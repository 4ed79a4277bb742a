"""The project's Python files and packages, as the architecture tests see them."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Product packages by import name -> folder. `ridgeline_rasa` is the Rasa extension (installed
# into .venv-rasa); `connectors` and `components` (rasa_project/) are its deprecated old names, and
# `privacy` is the deprecated alias of `ridgeline.privacy`.
PACKAGES = {
    "ridgeline": REPO / "ridgeline",
    "ridgeline_rasa": REPO / "ridgeline_rasa",
    "actions": REPO / "actions",
    "llm": REPO / "llm",
    "training": REPO / "training",
    "stack": REPO / "stack",
    "review": REPO / "review",
    "privacy": REPO / "privacy",
    "connectors": REPO / "rasa_project" / "connectors",
    "components": REPO / "rasa_project" / "components",
    "scripts": REPO / "scripts",
}
TESTS = REPO / "tests"
# The tools (benchmarks, the load generator, the tiny test model): they may import any product
# package; no product package imports them, and no image holds them.
TOOLS = REPO / "tools"


def python_files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def product_files() -> list[Path]:
    return python_files(*PACKAGES.values())


@functools.lru_cache(maxsize=None)
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def code_strings(path: Path) -> list[str]:
    """The string constants of ``path``'s code (docstrings left out), f-string pieces included."""
    tree = parse(path)
    docstrings = _docstrings(tree)
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]
