"""Each shared rule is written once, in the ground floor (ridgeline/), and everything else imports it.

Most of these rules are a line or two, too short for a duplicate finder to see, so this test
looks for them by what they do: a regular expression that finds an order id or an email, a
constant-time comparison, a lone-surrogate check, a ``ConfigError`` class, a choice refused
with "use one of". A second copy anywhere in the product code fails here with where it is;
import the rule from the module named instead.
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.architecture.tree import TESTS, TOOLS, code_strings, parse, product_files, python_files, relative

REGEX_SYNTAX = re.compile(r"\\[dswb]|\[|\(\?")
# rule -> (texts where it finds the identifier, a part of it, texts where it must not find that part)
RULES = {
    "order id": (["RG-10421", "where is my order RG-10421?"], "10421", ["XY-10421", "where is my order XY-10421?"]),
    "email": (["anna.berg@example.com", "mail me at anna.berg@example.com please"], "@",
              ["anna.berg@example", "mail me at anna.berg@example please"]),
}


def _finds(pattern: re.Pattern, texts: list[str], part: str) -> bool:
    return any(part in match.group(0) for text in texts for match in pattern.finditer(text))


def _is_rule(text: str, rule: str) -> bool:
    """Whether ``text``, as a regular expression, finds ``rule``'s identifier, and not a near miss."""
    samples, part, near_misses = RULES[rule]
    if not REGEX_SYNTAX.search(text):
        return False
    try:
        pattern = re.compile(text, re.IGNORECASE)  # as Rasa and the masking use theirs
    except (re.error, RecursionError, OverflowError):
        return False
    return _finds(pattern, samples, part) and not _finds(pattern, near_misses, part)


@pytest.mark.parametrize("rule", list(RULES))
def test_the_detector_knows_the_old_copies(rule):
    """The order-id and email patterns this test replaced are caught, so the check is not vacuous."""
    old = {"order id": [r"RG-?\d{5}", r"\b[Rr][Gg][- ]?\d{5}\b", r"^\s*#?\s*rg[\s\-_]*(\d{5})\s*$"],
           "email": [r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"]}
    assert all(_is_rule(text, rule) for text in old[rule])
    assert not _is_rule(r"[A-Za-z0-9_-]{1,256}", rule) and not _is_rule(r"\s+", rule)


@pytest.mark.parametrize("rule", list(RULES))
def test_only_the_ground_floor_defines_the_pattern_of_an(rule):
    found = {relative(path): text for path in product_files() if relative(path) != "ridgeline/shapes.py"
             for text in code_strings(path) if _is_rule(text, rule)}
    assert not found, f"the {rule} rule is written again in {found}; import it from ridgeline.shapes instead"


def _files_where(predicate, files) -> list[str]:
    return sorted({relative(path) for path in files for node in ast.walk(parse(path)) if predicate(node)})


def test_one_constant_time_comparison():
    def compares(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "compare_digest"
    assert _files_where(compares, product_files()) == ["ridgeline/access.py"], (
        "compare secrets with ridgeline.access.same_secret / bearer_matches")


def test_one_lone_surrogate_check():
    def checks(node: ast.AST) -> bool:
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            return "UnicodeEncodeError" in ast.unparse(node.type)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value in (0xD800, 0xDFFF)
        return False

    def holds_a_surrogate_range(path) -> bool:
        return any(r"\ud800" in text or any("\ud800" <= char <= "\udfff" for char in text)
                   for text in code_strings(path))

    files = set(_files_where(checks, product_files()))
    files |= {relative(path) for path in product_files() if holds_a_surrogate_range(path)}
    assert sorted(files) == ["ridgeline/text.py"], "use ridgeline.text.lone_surrogate_at / clean_text"


def test_one_config_error_class():
    def defines(node: ast.AST) -> bool:
        return isinstance(node, ast.ClassDef) and node.name == "ConfigError"
    assert _files_where(defines, product_files() + python_files(TESTS)) == ["ridgeline/settings.py"], (
        "raise ridgeline.settings.ConfigError")


def test_one_way_to_refuse_a_choice():
    """A setting outside its choices is refused by ridgeline.settings.parse_enum, in one wording."""
    def refuses_a_choice(node: ast.AST) -> bool:
        return (isinstance(node, ast.Raise) and node.exc is not None and "ConfigError" in ast.unparse(node.exc)
                and "one of" in ast.unparse(node.exc))
    assert _files_where(refuses_a_choice, product_files()) == ["ridgeline/settings.py"], (
        "parse a choice with ridgeline.settings.parse_enum")


@pytest.mark.parametrize("name, home", [("free_port", "tools/procs.py"), ("percentile", "tools/stats.py")])
def test_one_definition_of_the_tools_helpers(name, home):
    """One free port finder and one (nearest-rank) percentile, for the tools and the tests alike."""
    def defines(node: ast.AST) -> bool:
        return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
    assert _files_where(defines, product_files() + python_files(TOOLS, TESTS)) == [home], (
        f"import {name} from {home[:-3].replace('/', '.')}")


def test_one_way_for_the_tools_to_start_a_server():
    """The tools start server processes through stack.process (tools.procs.LLMServer, Stack), not a
    Popen of their own (the training benchmark's workers run to completion: subprocess.run)."""
    def starts_a_process(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and "Popen" in ast.unparse(node.func)
    assert _files_where(starts_a_process, python_files(TOOLS)) == []


SETTINGS_MODULES = ["actions/config.py", "llm/config.py", "ridgeline_rasa/settings.py", "stack/services.py"]


def test_one_way_to_read_a_number_from_the_environment():
    """The settings modules read numbers with ridgeline.settings.env_number / parse_number, which name
    the variable and what it must be; none converts a value itself."""
    def converts(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"int", "float"}
    found = _files_where(converts, [path for path in product_files() if relative(path) in SETTINGS_MODULES])
    assert found == [], "read a number with ridgeline.settings.env_number (or parse_number)"
