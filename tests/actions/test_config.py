from __future__ import annotations

import pytest

from actions.config import ConfigError, from_env


def test_defaults_suit_a_laptop():
    config = from_env({})
    assert config.llm_base_url == "http://localhost:8000/v1"
    assert config.chat_completions_url == "http://localhost:8000/v1/chat/completions"
    assert config.llm_timeout_s == 20.0
    assert config.orders_db_url.startswith("sqlite:///")


def test_environment_overrides_defaults():
    config = from_env({"LLM_BASE_URL": "http://llm:8000/v1/", "LLM_TIMEOUT_S": "5", "ORDERS_SEED_SAMPLE": "no"})
    assert config.chat_completions_url == "http://llm:8000/v1/chat/completions"
    assert config.llm_timeout_s == 5.0
    assert config.orders_seed_sample is False


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LLM_TIMEOUT_S": "75"}, "below 60 s"),
        ({"LLM_TIMEOUT_S": "soon"}, "not a valid float"),
        ({"LLM_BASE_URL": "llm:8000"}, "not an http"),
        ({"LLM_MAX_TOKENS": "0"}, "positive"),
        ({"ORDERS_SEED_SAMPLE": "maybe"}, "true or false"),
    ],
)
def test_bad_values_say_what_to_change(env, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env)
