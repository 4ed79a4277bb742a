"""action_llm_response against a real HTTP server on loopback that misbehaves in every way."""

from __future__ import annotations

import asyncio
import time

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.config import ActionServerConfig
from actions.llm_client import LLMBadResponse, LLMHTTPError, LLMTimeout, LLMUnreachable, complete_chat
from actions.llm_response import FALLBACK_RESPONSE, TRUNCATED_RESPONSE, ActionLLMResponse
from tests.actions.conftest import bot, make_tracker, user


def run_action(config: ActionServerConfig, events) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    events_out = asyncio.run(ActionLLMResponse(config).run(dispatcher, make_tracker(events), {}))
    assert events_out == []
    return dispatcher


def test_reply_from_the_llm_is_uttered(fake_llm, llm_config):
    fake_llm.behaviour.reply = "A three-season tent is fine below the tree line."
    dispatcher = run_action(llm_config, [user("hi"), bot("Hello!"), user("which tent for Scotland?")])
    assert [m["text"] for m in dispatcher.messages] == ["A three-season tent is fine below the tree line."]
    sent = fake_llm.behaviour.requests[0]
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "which tent for Scotland?"}
    assert sent["max_tokens"] == llm_config.llm_max_tokens


def test_api_key_is_sent_as_bearer_token(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, llm_api_key="s3cret", llm_timeout_s=1)
    run_action(config, [user("hello there")])
    assert fake_llm.behaviour.headers[0]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    "mode, expected_error",
    [("status", LLMHTTPError), ("garbage", LLMBadResponse), ("empty", LLMBadResponse), ("drop", LLMUnreachable)],
)
def test_client_turns_each_failure_into_a_typed_error(fake_llm, llm_config, mode, expected_error):
    fake_llm.behaviour.mode = mode
    with pytest.raises(expected_error):
        asyncio.run(complete_chat([{"role": "user", "content": "hi"}], llm_config))


def test_slow_llm_times_out_within_the_budget(fake_llm, llm_config):
    fake_llm.behaviour.delay_s = 3.0
    started = time.perf_counter()
    with pytest.raises(LLMTimeout):
        asyncio.run(complete_chat([{"role": "user", "content": "hi"}], llm_config))
    assert time.perf_counter() - started < llm_config.llm_timeout_s + 1.0


@pytest.mark.parametrize("mode", ["status", "garbage", "empty", "drop", "slow"])
def test_user_gets_the_apology_whenever_the_llm_fails(fake_llm, llm_config, mode):
    fake_llm.behaviour.mode = mode
    if mode == "slow":
        fake_llm.behaviour.delay_s = 3.0
    dispatcher = run_action(llm_config, [user("what's the best way to dry boots?")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]


def test_user_gets_the_apology_when_nothing_listens(tmp_path):
    config = ActionServerConfig(llm_base_url="http://127.0.0.1:9/v1", llm_timeout_s=1)
    dispatcher = run_action(config, [user("anyone there?")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]


def test_action_never_raises_even_on_a_broken_tracker(llm_config):
    dispatcher = run_action(llm_config, [bot("only the bot spoke")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]


def test_a_long_message_is_cut_before_the_prompt_and_the_user_is_told(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, llm_timeout_s=2, max_user_chars=50)
    long_message = "Which tent should I buy for a week in Norway? " + "Tell me everything. " * 20
    dispatcher = run_action(config, [user(long_message)])
    assert dispatcher.messages[0] == {**dispatcher.messages[0], "response": TRUNCATED_RESPONSE, "max_chars": "50"}
    assert dispatcher.messages[1]["text"] == fake_llm.behaviour.reply
    prompt_user_text = fake_llm.behaviour.requests[0]["messages"][-1]["content"]
    assert prompt_user_text.startswith(long_message[:40]) and len(prompt_user_text) < 80


def test_a_message_within_the_limit_gets_no_note(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, llm_timeout_s=2, max_user_chars=50)
    dispatcher = run_action(config, [user("x" * 50)])
    assert [m.get("response") for m in dispatcher.messages] == [None]
