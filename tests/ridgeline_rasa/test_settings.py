"""ridgeline_rasa/settings.py: every environment variable of the Rasa extension, read once, there."""

from __future__ import annotations

import ast

import pytest

from ridgeline_rasa import settings
from ridgeline_rasa.settings import ApiAccess, GateSettings, Settings
from tests.architecture.tree import REPO, parse, python_files, relative


def _reads_the_environment(path) -> bool:
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"} \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {alias.name for alias in node.names} & {"environ", "getenv"}:
            return True
    return False


def test_only_the_settings_module_reads_the_environment():
    readers = [relative(p) for p in python_files(REPO / "ridgeline_rasa") if _reads_the_environment(p)]
    # launch.py hands the environment on to the `rasa` it starts (it reads no setting of its own)
    assert readers == ["ridgeline_rasa/launch.py", "ridgeline_rasa/settings.py"], \
        f"{readers}: read environment variables in ridgeline_rasa/settings.py and take them from there"


def test_every_variable_and_its_default():
    loaded = Settings.from_env({
        "MAX_MESSAGE_CHARS": "500", "RATE_LIMIT_MESSAGES": "3", "RATE_LIMIT_WINDOW_S": "2.5",
        "RASA_AUTH_TOKEN": "token", "RASA_JWT_SECRET": "secret", "RASA_JWT_METHOD": "HS512",
        "SLACK_BOT_TOKEN": "xoxb", "TELEGRAM_API_URL": "http://fake", "UNRELATED": "x"})
    assert loaded.gate == GateSettings(max_message_chars=500, rate_limit_messages=3, rate_limit_window_s=2.5)
    assert loaded.api == ApiAccess(auth_token="token", jwt_secret="secret", jwt_method="HS512")
    assert dict(loaded.channels) == {"SLACK_BOT_TOKEN": "xoxb", "TELEGRAM_API_URL": "http://fake"}
    assert Settings.from_env({}) == Settings(GateSettings(4000, 15, 30.0), ApiAccess("", None, "HS256"), {})
    assert set(settings.VARIABLES) >= {"MAX_MESSAGE_CHARS", "RASA_AUTH_TOKEN", "SLACK_SIGNING_SECRET",
                                       "TELEGRAM_SECRET_TOKEN"}


def test_a_value_that_cannot_be_used_is_named():
    with pytest.raises(ValueError, match=r"RATE_LIMIT_MESSAGES='none' is not a whole number > 0\."):
        Settings.from_env({"RATE_LIMIT_MESSAGES": "none"})
    with pytest.raises(ValueError, match=r"MAX_MESSAGE_CHARS='-4' is not a whole number > 0\."):
        Settings.from_env({"MAX_MESSAGE_CHARS": "-4"})
    for raw in ("0", "nan", "inf", "soon"):
        with pytest.raises(ValueError, match=rf"RATE_LIMIT_WINDOW_S='{raw}' is not a number of seconds > 0\."):
            Settings.from_env({"RATE_LIMIT_WINDOW_S": raw})


def test_the_secrets_stay_out_of_the_repr():
    assert "secret-value" not in repr(Settings.from_env({"RASA_AUTH_TOKEN": "secret-value",
                                                          "SLACK_BOT_TOKEN": "secret-value"}))


def test_the_process_reads_its_environment_once(monkeypatch):
    settings.current.cache_clear()
    try:
        monkeypatch.setenv("MAX_MESSAGE_CHARS", "123")
        first = settings.current()
        monkeypatch.setenv("MAX_MESSAGE_CHARS", "456")
        assert settings.current() is first and first.gate.max_message_chars == 123
    finally:
        settings.current.cache_clear()
