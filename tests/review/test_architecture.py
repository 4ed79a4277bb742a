"""review/ stands on the ground floor: it imports ridgeline, SQLAlchemy and PyYAML, never a service,
the training code or the tools (tests/architecture's rules, for the package it does not list)."""

from __future__ import annotations

import sys

from tests.architecture.tree import REPO, imported_modules, python_files, relative

ALLOWED = set(sys.stdlib_module_names) | {"review", "ridgeline", "sqlalchemy", "yaml"}


def test_review_imports_only_the_ground_floor_and_its_libraries():
    outside = sorted(f"{relative(path)} imports {name}" for path in python_files(REPO / "review")
                     for name in imported_modules(path) if name.split(".")[0] not in ALLOWED)
    assert not outside, outside


def test_review_uses_the_ground_floors_api_not_its_modules():
    internal = sorted(f"{relative(path)} imports {name}" for path in python_files(REPO / "review")
                      for name in imported_modules(path) if name.startswith(("ridgeline.privacy.masking", "ridgeline.privacy.log_filter")))
    assert not internal, internal


def test_only_its_settings_module_reads_the_environment():
    readers = sorted(relative(path) for path in python_files(REPO / "review")
                     if "os.environ" in path.read_text() or "getenv" in path.read_text())
    assert readers == ["review/settings.py"]
