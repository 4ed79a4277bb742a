from __future__ import annotations

import logging

import pytest

from actions import config as actions_config
from actions.config import RENAMED, VARIABLES, ConfigError, from_env
from ridgeline import settings as ground_floor


def test_defaults_suit_a_laptop():
    config = from_env({})
    assert config.llm_base_url == "http://localhost:8000/v1"
    assert config.chat_completions_url == "http://localhost:8000/v1/chat/completions"
    assert config.llm_timeout_s == 20.0
    assert config.orders_db_url.startswith("sqlite:///")


def test_environment_overrides_defaults():
    config = from_env({"ACTIONS_LLM_URL": "http://llm:8000/v1/", "ACTIONS_LLM_TIMEOUT_S": "5",
                       "ACTIONS_LLM_MODEL": "ridgeline-llm", "ACTIONS_LLM_API_KEY": "k3y",
                       "ACTIONS_LLM_MAX_TOKENS": "60", "ACTIONS_LLM_TEMPERATURE": "0.2",
                       "ACTIONS_LLM_HISTORY_TURNS": "4", "ORDERS_SEED_SAMPLE": "no"})
    assert config.chat_completions_url == "http://llm:8000/v1/chat/completions"
    assert (config.llm_timeout_s, config.llm_model, config.llm_api_key) == (5.0, "ridgeline-llm", "k3y")
    assert (config.llm_max_tokens, config.llm_temperature, config.history_turns) == (60, 0.2, 4)
    assert config.orders_seed_sample is False


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ACTIONS_LLM_TIMEOUT_S": "75"}, "ACTIONS_LLM_TIMEOUT_S=75 must be above 0 and below 60 s"),
        ({"ACTIONS_LLM_TIMEOUT_S": "soon"}, "ACTIONS_LLM_TIMEOUT_S='soon' is not a number"),
        ({"ACTIONS_LLM_URL": "llm:8000"}, "ACTIONS_LLM_URL='llm:8000' is not an http"),
        ({"ACTIONS_LLM_MAX_TOKENS": "0"}, "ACTIONS_LLM_MAX_TOKENS must be a positive"),
        ({"ACTIONS_LLM_MAX_TOKENS": "many"}, "ACTIONS_LLM_MAX_TOKENS='many' is not a whole number"),
        ({"ACTIONS_LLM_TEMPERATURE": "3"}, "ACTIONS_LLM_TEMPERATURE must be between 0 and 2"),
        ({"ORDERS_SEED_SAMPLE": "maybe"}, "true or false"),
        # an old name's value is checked under the new name
        ({"LLM_TIMEOUT_S": "75"}, "ACTIONS_LLM_TIMEOUT_S=75 must be"),
    ],
)
def test_bad_values_say_what_to_change(env, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env)


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each old name is warned about once per process: start these tests from none warned."""
    monkeypatch.setattr(ground_floor, "_warned", set())


def old_name_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ridgeline.settings" and r.levelno == logging.WARNING]


def test_the_old_names_work_for_one_release_with_a_warning_naming_the_new_one(fresh_warnings, caplog):
    caplog.set_level(logging.WARNING)
    old = {"LLM_BASE_URL": "http://old:8000/v1", "LLM_MODEL_NAME": "old-model", "LLM_API_KEY": "old-key",
           "LLM_TIMEOUT_S": "9", "LLM_MAX_TOKENS": "24", "LLM_TEMPERATURE": "0.1", "LLM_HISTORY_TURNS": "3"}
    assert set(old) == set(RENAMED)
    config = from_env(old)
    assert (config.llm_base_url, config.llm_model, config.llm_api_key) == ("http://old:8000/v1", "old-model", "old-key")
    assert (config.llm_timeout_s, config.llm_max_tokens) == (9, 24)
    assert (config.llm_temperature, config.history_turns) == (0.1, 3)
    warnings = old_name_warnings(caplog)
    assert len(warnings) == len(RENAMED)
    assert "LLM_TIMEOUT_S is the old name of ACTIONS_LLM_TIMEOUT_S (the action server)" in " ".join(warnings)
    from_env(old)  # read again: no second warning
    assert len(old_name_warnings(caplog)) == len(RENAMED)


def test_the_new_name_wins_when_both_are_set(fresh_warnings, caplog):
    caplog.set_level(logging.WARNING)
    config = from_env({"ACTIONS_LLM_MAX_TOKENS": "60", "LLM_MAX_TOKENS": "24",
                       "ACTIONS_LLM_API_KEY": "same", "LLM_API_KEY": "same"})
    assert config.llm_max_tokens == 60 and config.llm_api_key == "same"
    # a different value under the old name is reported as ignored; the same value is no news
    assert old_name_warnings(caplog) == [
        "LLM_MAX_TOKENS is ignored: ACTIONS_LLM_MAX_TOKENS is set too and wins (the action server); "
        "remove LLM_MAX_TOKENS, its old name."]


def test_the_llm_services_variables_are_not_read():
    """LLM_MODEL is the LLM service's checkpoint, LLM_DEFAULT_MAX_TOKENS its default: not the action server's."""
    config = from_env({"LLM_MODEL": "Qwen/Qwen2.5-1.5B-Instruct", "LLM_DEFAULT_MAX_TOKENS": "256", "LLM_PORT": "9"})
    assert config == from_env({})


def test_the_variables_it_reads_are_the_ones_it_is_given():
    assert all(actions_config.READS.allows(name) for name in (*VARIABLES, *RENAMED, "SANIC_HOST"))
    assert not actions_config.READS.allows("LLM_MODEL") and not actions_config.READS.allows("RATE_LIMIT_MESSAGES")
    assert set(RENAMED.values()) <= set(VARIABLES)
    assert all(name.startswith("ACTIONS_LLM_") for name in RENAMED.values())
