"""The floors: ridgeline imports no other project package, and no package reaches into another's internals."""

from __future__ import annotations

import sys

import pytest

from tests.architecture.tree import PACKAGES, REPO, imported_modules, parse, product_files, python_files, relative

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
