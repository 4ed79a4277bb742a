"""action_llm_response against a real HTTP server on loopback that misbehaves in every way."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.config import ActionServerConfig
from actions import metrics
from actions.llm_client import (LLMBadResponse, LLMHTTPError, LLMReply, LLMTimeout, LLMUnreachable, complete_chat,
                                whole_sentences)
from actions.llm_response import FALLBACK_RESPONSE, TRUNCATED_RESPONSE, ActionLLMResponse
from ridgeline import feedback
from ridgeline.shapes import SKU
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
    # The verdict buttons name this reply; its metadata keeps the SKUs of its sources (ridgeline.feedback).
    message = dispatcher.messages[0]
    reply_id = message["reply_id"]
    assert message["buttons"] == feedback.buttons(reply_id)
    assert message["sources"] == re.findall(SKU, sent["messages"][-1]["content"]) and len(message["sources"]) == 3
    assert sent["messages"][0]["role"] == "system"
    question = sent["messages"][-1]
    assert question["role"] == "user"
    assert question["content"].startswith("which tent for Scotland?\n\nProducts from our catalogue")
    assert question["content"].count("\n[") == llm_config.llm_sources  # three numbered sources, all tents
    assert all("(tent, " in line for line in question["content"].splitlines()[3:])
    assert sent["max_tokens"] == llm_config.llm_max_tokens


def test_api_key_is_sent_as_bearer_token(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", llm_api_key="s3cret", llm_timeout_s=1)
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
    assert not dispatcher.messages[0]["buttons"] and "reply_id" not in dispatcher.messages[0]


def test_user_gets_the_apology_when_nothing_listens(tmp_path):
    config = ActionServerConfig(llm_base_url="http://127.0.0.1:9/v1", llm_timeout_s=1)
    dispatcher = run_action(config, [user("anyone there?")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]


def test_action_never_raises_even_on_a_broken_tracker(llm_config):
    dispatcher = run_action(llm_config, [bot("only the bot spoke")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]


def test_a_long_message_is_cut_before_the_prompt_and_the_user_is_told(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", llm_timeout_s=2, max_user_chars=50)
    long_message = "Which tent should I buy for a week in Norway? " + "Tell me everything. " * 20
    dispatcher = run_action(config, [user(long_message)])
    assert dispatcher.messages[0] == {**dispatcher.messages[0], "response": TRUNCATED_RESPONSE, "max_chars": "50"}
    assert dispatcher.messages[1]["text"] == fake_llm.behaviour.reply
    prompt_user_text = fake_llm.behaviour.requests[0]["messages"][-1]["content"].split("\n\nProducts from")[0]
    assert prompt_user_text.startswith(long_message[:40]) and len(prompt_user_text) < 80


def test_a_message_within_the_limit_gets_no_note(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", llm_timeout_s=2, max_user_chars=50)
    dispatcher = run_action(config, [user("x" * 50)])
    assert [m.get("response") for m in dispatcher.messages] == [None]


def outcomes() -> dict[str, float]:
    return {o: metrics.REGISTRY.get_sample_value("action_llm_replies_total", {"outcome": o})
            for o in metrics.LLM_OUTCOMES}


def counted(before: dict[str, float]) -> dict[str, float]:
    return {o: v - before[o] for o, v in outcomes().items() if v != before[o]}


def test_the_reply_is_streamed_and_counted_whole(fake_llm, llm_config):
    fake_llm.behaviour.reply = "Dry boots slowly, away from the fire. Stuff them with newspaper."
    before = outcomes()
    dispatcher = run_action(llm_config, [user("how do I dry boots?")])
    assert [m["text"] for m in dispatcher.messages] == ["Dry boots slowly, away from the fire. Stuff them with newspaper."]
    assert fake_llm.behaviour.requests[0]["stream"] is True
    assert fake_llm.behaviour.streams_finished == 1
    assert counted(before) == {"whole": 1}


def test_a_server_that_ignores_stream_is_read_as_one_body(fake_llm, llm_config):
    fake_llm.behaviour.mode = "json"
    reply = asyncio.run(complete_chat([{"role": "user", "content": "hi"}], llm_config))
    assert reply == LLMReply("Pitch the tent with its back to the wind.")


STALLING_REPLY = "Layer up before you get cold. Eat something warm before bed. Then check the"


def test_a_reply_the_deadline_overtakes_is_cut_at_its_last_whole_sentence(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", llm_timeout_s=2.0)
    fake_llm.behaviour.reply = STALLING_REPLY
    fake_llm.behaviour.stall_after_words = 13  # up to "Then", and the stream stalls before "check"
    before = outcomes()
    dispatcher = run_action(config, [user("how do I stay warm in a tent?")])
    assert [m["text"] for m in dispatcher.messages] == ["Layer up before you get cold. Eat something warm before bed."]
    assert counted(before) == {"cut": 1}
    deadline = time.monotonic() + 60  # a hang guard: the server notices the closed socket at its next write
    while fake_llm.behaviour.streams_abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_llm.behaviour.streams_abandoned == 1  # the client hung up: the service can stop generating


def test_the_apology_when_not_one_sentence_arrived_before_the_deadline(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", llm_timeout_s=1.0)
    fake_llm.behaviour.reply = STALLING_REPLY
    fake_llm.behaviour.stall_after_words = 4  # "Layer up before you"
    with pytest.raises(LLMTimeout):
        asyncio.run(complete_chat([{"role": "user", "content": "hi"}], config))
    before = outcomes()
    dispatcher = run_action(config, [user("how do I stay warm in a tent?")])
    assert [m["response"] for m in dispatcher.messages] == [FALLBACK_RESPONSE]
    assert counted(before) == {"apology": 1}


def test_an_error_in_the_middle_of_the_stream_keeps_the_whole_sentences(fake_llm, llm_config):
    fake_llm.behaviour.mode = "stream_error"
    fake_llm.behaviour.reply = "Bring a liner. It adds warmth cheaply and keeps the bag clean for longer trips."
    reply = asyncio.run(complete_chat([{"role": "user", "content": "hi"}], llm_config))
    assert reply == LLMReply("Bring a liner.", cut=True)


def test_a_reply_that_max_tokens_stopped_mid_sentence_ends_at_its_last_whole_sentence(fake_llm, llm_config):
    fake_llm.behaviour.finish_reason = "length"
    fake_llm.behaviour.reply = "Pack a down jacket. Merino layers dry fast and do not"
    before = outcomes()
    dispatcher = run_action(llm_config, [user("what should I wear?")])
    assert [m["text"] for m in dispatcher.messages] == ["Pack a down jacket."]
    assert counted(before) == {"whole": 1}  # as long as configured: not cut by the deadline
    fake_llm.behaviour.reply = "Merino layers dry fast and do not"  # not one whole sentence: kept as it is
    assert asyncio.run(complete_chat([{"role": "user", "content": "hi"}], llm_config)).text == fake_llm.behaviour.reply


@pytest.mark.parametrize("text, whole", [
    ("Hello there. This is", "Hello there."),
    ("One. Two! Three? Four", "One. Two! Three?"),
    ('He said "go." Then', 'He said "go."'),
    ("It weighs 1.5 kg and", ""),  # a decimal point ends nothing
    ("No sentence has ended", ""),
    ("Maybe ended.", ""),  # the stream may go on (e.g. "ended.5"): only a mark followed by a space counts
])
def test_whole_sentences(text, whole):
    assert whole_sentences(text) == whole


def test_a_reply_that_invents_a_price_is_rewritten_from_the_sources(fake_llm, llm_config):
    """A scripted model invents a price, a SKU and a product: the visitor gets the sources' facts."""
    from ridgeline.catalog import read_catalog
    from ridgeline.shapes import SKU
    import re
    catalog = {p.sku: p for p in read_catalog()}
    before = outcomes()
    for invented in ("The {name} is yours for £1.99.", "Try RO-99999, our best one.",
                     "Go for the Ridgeline Summit Pro 9000."):
        bag = next(p for p in catalog.values() if p.category == "sleeping_bag")
        fake_llm.behaviour.reply = invented.format(name=bag.name)
        dispatcher = run_action(llm_config, [user("which sleeping bag for a winter night at -10 °C?")])
        text = dispatcher.messages[0]["text"]
        assert "£1.99" not in text and "RO-99999" not in text and "Summit Pro" not in text
        assert text.startswith("Here is what the Ridgeline Outfitters catalogue has for that:")
        assert not dispatcher.messages[0]["buttons"]  # scripted: no verdict buttons
        sources = re.findall(SKU, fake_llm.behaviour.requests[-1]["messages"][-1]["content"])
        assert re.findall(SKU, text) == sources[:3] and all(catalog[s].category == "sleeping_bag" for s in sources)
    assert outcomes()["rewritten"] == before["rewritten"] + 3


def test_a_grounded_reply_reaches_the_visitor_unchanged(fake_llm, llm_config):
    import re
    from ridgeline.shapes import SKU
    fake_llm.behaviour.reply = "placeholder"
    run_action(llm_config, [user("which sleeping bag for a winter night at -10 °C?")])
    source_sku = re.findall(SKU, fake_llm.behaviour.requests[-1]["messages"][-1]["content"])[0]
    from ridgeline.catalog import read_catalog
    product = next(p for p in read_catalog() if p.sku == source_sku)
    fake_llm.behaviour.reply = f"The {product.name} ({product.sku}) at £{product.price_gbp:,.2f} is rated for it."
    dispatcher = run_action(llm_config, [user("which sleeping bag for a winter night at -10 °C?")])
    assert [m["text"] for m in dispatcher.messages] == [fake_llm.behaviour.reply]


def test_no_sources_when_turned_off(fake_llm, tmp_path):
    config = ActionServerConfig(llm_base_url=fake_llm.base_url, llm_timeout_s=2, llm_sources=0,
                                orders_db_url=f"sqlite:///{tmp_path / 'store.db'}")
    run_action(config, [user("which tent for Scotland?")])
    assert fake_llm.behaviour.requests[-1]["messages"][-1]["content"] == "which tent for Scotland?"
