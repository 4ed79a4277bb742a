"""The floors: ridgeline imports no other project package, no package reaches into another's internals,
and no product package imports the tools (tools/: benchmarks, load generator, tiny test model)."""

from __future__ import annotations

import ast
import sys

import pytest

from tests.architecture.tree import (PACKAGES, REPO, TOOLS, code_strings, imported_modules, parse, product_files,
                                     python_files, relative)

# What the ground floor may import besides the standard library: what both virtualenvs have.
GROUND_FLOOR_THIRD_PARTY = {"yaml"}


@pytest.mark.parametrize("path", python_files(PACKAGES["ridgeline"]), ids=relative)
def test_the_ground_floor_imports_only_itself_the_standard_library_and_yaml(path):
    allowed = set(sys.stdlib_module_names) | GROUND_FLOOR_THIRD_PARTY | {"ridgeline"}
    outside = sorted({name for name in imported_modules(path) if name.split(".")[0] not in allowed})
    assert not outside, f"{relative(path)} imports {outside}: ridgeline is the ground floor and imports nothing above it"


def _internal_modules() -> dict[str, str]:
    """module -> its package, for the modules a package keeps to itself.

    A package whose ``__init__`` declares ``__all__`` offers that as its whole API: its modules
    are internal. ``privacy`` is the deprecated alias of ``ridgeline.privacy``.
    """
    internal = {}
    for init in python_files(*PACKAGES.values()):
        if init.name != "__init__.py" or "__all__" not in init.read_text(encoding="utf-8"):
            continue
        package = ".".join(init.parent.relative_to(REPO).parts)
        for module in init.parent.glob("*.py"):
            if module.name != "__init__.py":
                internal[f"{package}.{module.stem}"] = package
    for name, package in list(internal.items()):
        if package == "ridgeline.privacy":
            internal[name.replace("ridgeline.privacy", "privacy")] = "privacy"
    return internal


def test_the_privacy_modules_are_internal():
    assert {"ridgeline.privacy.masking", "privacy.masking"} <= set(_internal_modules())


def _top_level(module: str) -> str:
    # the deprecated alias `privacy` is `ridgeline.privacy` under its old name
    return "ridgeline" if module.split(".")[0] == "privacy" else module.split(".")[0]


def test_no_package_imports_another_packages_internal_module():
    internal = _internal_modules()
    offending = []
    for path in product_files():
        importer = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for name in imported_modules(path):
            if name in internal and _top_level(importer) != _top_level(name):
                offending.append(f"{relative(path)} imports {name}")
    assert not offending, "import the package, not its modules: " + "; ".join(offending)


def test_no_package_imports_another_packages_private_names():
    offending = []
    for path in product_files():
        own = path.relative_to(REPO).parts[0]
        for node in parse(path).body:
            module = getattr(node, "module", None)
            if module and not getattr(node, "level", 0) and module.split(".")[0] in PACKAGES \
                    and module.split(".")[0] != own:
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private:
                    offending.append(f"{relative(path)}: from {module} import {', '.join(private)}")
    assert not offending, "these names are private to their package: " + "; ".join(offending)


# The deployables: each runs in its own image with the ground floor beside it, never another service.
SERVICES = ("llm", "actions", "ridgeline_rasa")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = {name for name in PACKAGES if name not in {service, "ridgeline", "privacy"}}
    offending = sorted(
        f"{relative(path)} imports {name}"
        for path in python_files(PACKAGES[service])
        for name in imported_modules(path)
        if name.split(".")[0] in others
    )
    assert not offending, f"{service} ships alone in its image (with ridgeline/): " + "; ".join(offending)


# The one product module allowed to import `tools`, and only this: the deprecated `python -m llm
# tiny-model`, which forwards to the tool for one release and says where it went where there is none.
TOOLS_IMPORTS_ALLOWED = {"llm/__main__.py": {"tools.testing.tiny_model"}}


def tools_uses(path) -> set[str]:
    """What of ``tools`` the file imports, or names as a module to run (``-m tools.…``) or to import."""
    modules = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    # a module run or imported by name (`-m tools.load`, import_module("tools.x")); not the word "tools",
    # which is also a field of the OpenAI chat API
    modules |= {text.strip() for text in code_strings(path) if text.strip().startswith("tools.")}
    return {name for name in modules if name == "tools" or name.startswith("tools.")}


def test_the_tools_check_sees_every_way_in(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import tools.bench.llm\nfrom tools import procs\nfrom tools.stats import percentile\n"
                      "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'tools.load'])\n"
                      "import stack.process  # a product module is no tool\n")
    assert tools_uses(module) == {"tools.bench.llm", "tools", "tools.stats", "tools.load"}


def test_no_product_package_imports_the_tools():
    offending = []
    for path in product_files():
        used = tools_uses(path) - TOOLS_IMPORTS_ALLOWED.get(relative(path), set())
        if used:
            offending.append(f"{relative(path)} uses {sorted(used)}")
    assert not offending, ("tools/ is for developers and in no image: a service must not import it. "
                           + "; ".join(offending))


def test_the_one_allowed_import_of_the_tools_is_still_needed():
    """When the deprecated command goes, its allowance goes with it."""
    for name, allowed in TOOLS_IMPORTS_ALLOWED.items():
        assert tools_uses(REPO / name) == allowed, f"{name}: update TOOLS_IMPORTS_ALLOWED"


def test_the_tools_import_products_and_themselves_not_the_tests():
    offending = [f"{relative(path)} imports {name}" for path in python_files(TOOLS)
                 for name in imported_modules(path) if name.split(".")[0] == "tests"]
    assert not offending, "the tests use the tools, not the other way round: " + "; ".join(offending)
