"""The ground floor's small checks: secrets, bearer tokens, text, settings; and the deprecated old names."""

from __future__ import annotations

import enum
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ridgeline.access import bearer_matches, bearer_token, same_secret
from ridgeline.settings import ConfigError, parse_enum
from ridgeline.text import clean_text, has_control_characters, lone_surrogate_at

REPO = Path(__file__).resolve().parents[2]


def test_secrets_compare_as_str_or_bytes():
    assert same_secret("s3cret", b"s3cret") and same_secret(b"s3cret", "s3cret")
    assert not same_secret("s3cret", "s3cre") and not same_secret("", "x")


@pytest.mark.parametrize(("header", "token"), [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"),
                                               ("Basic abc", None), ("abc", None), ("", None), (None, None)])
def test_bearer_token(header, token):
    assert bearer_token(header) == token
    assert bearer_matches(header, "abc") is (token == "abc")


def test_lone_surrogates_and_control_characters():
    assert lone_surrogate_at("hi \ud800 there") == 3 and lone_surrogate_at("hi \U0001F600") is None
    assert has_control_characters("a\x00b") and has_control_characters("a\udfffb") and not has_control_characters("ok é")
    assert clean_text("a\u200bb\x07c\ud800", 100) == "abc"


class Colour(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_parse_enum_names_the_setting_as_typed_and_every_choice():
    assert parse_enum(Colour, "red", "--colour") is Colour.RED
    assert parse_enum(Colour, "BLUE", "COLOUR", ignore_case=True) is Colour.BLUE
    with pytest.raises(ConfigError, match=r"^--colour 'green' is not valid; use one of red, blue\.$"):
        parse_enum(Colour, "green", "--colour")
    with pytest.raises(ConfigError, match=r"^COLOUR='Green' is not valid; use one of red, blue\.$"):
        parse_enum(Colour, "Green", "COLOUR", ignore_case=True)


def test_every_service_raises_the_one_config_error():
    from actions.config import ConfigError as actions_error
    from llm.errors import ConfigError as llm_error
    from training.config import ConfigError as training_error
    assert actions_error is llm_error is training_error is ConfigError
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(("old", "new"), [("actions.knowledge", "ridgeline.knowledge"),
                                          ("privacy", "ridgeline.privacy"),
                                          ("privacy.masking", "ridgeline.privacy.masking")])
def test_the_old_module_names_still_work_and_warn(old, new):
    code = (f"import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            f"try:\n    import {old}\nexcept DeprecationWarning as w:\n    print(w)\n"
            f"warnings.simplefilter('ignore')\nimport importlib, {new}\n"
            f"print(importlib.import_module('{old}') is {new})")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    warning, same = result.stdout.strip().splitlines()
    assert new.rsplit(".", 1)[0] in warning and "next release" in warning
    assert same == "True"


def test_python_m_actions_knowledge_still_checks_and_warns():
    result = subprocess.run([sys.executable, "-m", "actions.knowledge", "check"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "DeprecationWarning" in result.stderr and "python -m ridgeline.knowledge" in result.stderr


def test_no_warning_from_the_new_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        import ridgeline.knowledge  # noqa: F401
        import ridgeline.privacy  # noqa: F401
