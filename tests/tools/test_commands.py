"""The tools' commands run under their module paths, and the Makefile's targets point at them."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["tools.bench.llm", "tools.bench.llm.abandon", "tools.bench.turns", "tools.bench.training", "tools.load",
            "tools.testing.tiny_model"]


@pytest.mark.parametrize("module", COMMANDS)
def test_each_command_answers_help_under_its_name(module, tmp_path):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)  # not the checkout: the installed package, as from anywhere
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {module} ")


def runnable(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and (spec.submodule_search_locations is None
                                 or importlib.util.find_spec(f"{module}.__main__") is not None)


def test_the_makefile_runs_the_tools_where_they_are_now():
    text = (REPO / "Makefile").read_text()
    modules = re.findall(r"\$\(PY\) -m ([\w.]+)", text)
    assert {"tools.bench.llm", "tools.load", "tools.testing.tiny_model"} <= set(modules)
    assert [m for m in modules if not runnable(m)] == []
    scripts = re.findall(r"^\t@?([\w./-]+\.sh)\b", text, re.M)
    assert "tools/bench/llm/gpu.sh" in scripts
    assert all(os.access(REPO / s, os.X_OK) for s in scripts), scripts
