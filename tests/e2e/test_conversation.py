"""Real servers over HTTP: Rasa (trained model) -> action server -> LLM service (tiny model)."""

from __future__ import annotations

import re

import httpx
import pytest

from actions import orders_db
from tests.e2e.conftest import service_url
from tests.support.servers import tracker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def llm_requests_total(stack) -> float:
    text = httpx.get(f"{service_url(stack, 'llm')}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r'^llm_requests_total\{[^}]*\} ([0-9.e+]+)$', text, re.M))


def test_hi_gets_the_greeting(conversation, responses):
    replies = conversation.say("hi")
    assert replies and replies[0] in responses["utter_greet"]


def test_order_status_with_everything_asked_for(conversation, responses):
    assert conversation.say("I want to check my order")[-1] in responses["utter_ask_order_id"]
    assert conversation.say("RG-10421")[-1] in responses["utter_ask_email"]
    replies = conversation.say("anna.berg@example.com")
    expected = orders_db.describe(orders_db.load_sample_orders()[0])
    assert expected in replies


def test_order_status_with_the_order_id_up_front(conversation, responses):
    assert conversation.say("where is my order rg10423?")[-1] in responses["utter_ask_email"]
    replies = conversation.say("mia.rossi@example.com")
    assert any(r.startswith("Your order RG-10423") and "was delivered on 6 Nov 2026" in r for r in replies)


def test_unknown_order_gets_a_clear_answer(conversation):
    conversation.say("track order RG-99999")
    replies = conversation.say("anna.berg@example.com")
    assert any("couldn't find an order RG-99999" in r for r in replies)


def test_faq_is_answered_from_the_store_facts(conversation, responses):
    replies = conversation.say("what is your return policy?")
    assert replies and replies[0] in responses["utter_faq/returns"]


def test_open_question_is_answered_by_the_llm_service(stack, conversation, responses):
    before = llm_requests_total(stack)
    replies = conversation.say("what sleeping bag should I take for a winter camp in the Alps?")
    assert llm_requests_total(stack) == before + 1, "the LLM service did not see the request"
    scripted = {text for texts in responses.values() for text in texts}
    assert replies and replies[0].strip()
    assert replies[0] not in scripted, f"expected the LLM's text, got a scripted response: {replies[0]!r}"


def test_with_the_llm_service_stopped_the_user_gets_the_apology(stack, conversation, responses):
    stack.stop(["llm"])
    try:
        replies = conversation.say("how do I keep my feet warm while hiking in snow?")
        assert replies and replies[0] in responses["utter_llm_unavailable"]
    finally:
        stack.start(["llm"])  # later tests (and the webchat) expect it back
    replies = conversation.say("any tips for a first multi-day hike?")
    assert replies[0] not in responses["utter_llm_unavailable"], "the assistant did not recover"


def test_webchat_page_is_served_and_points_at_rasa(stack):
    base = service_url(stack, "webchat")
    page = httpx.get(f"{base}/", timeout=10)
    assert page.status_code == 200 and 'id="webchat"' in page.text
    config = httpx.get(f"{base}/config.js", timeout=10).text
    rasa_port = next(s.port for s in stack.services if s.name == "rasa")
    assert f":{rasa_port}" in config


def test_restart_command_is_answered_not_mistaken_for_a_failure(conversation, responses):
    conversation.say("hi")
    assert conversation.say("/restart") == responses["utter_restart"]


def test_only_asking_for_a_person_flags_the_conversation_for_handoff(stack, conversation, responses):
    handoff_line = f"human handoff requested by {conversation.sender}"
    actions_log = stack.running["actions"].log_path
    conversation.say("hi")
    conversation.say("what is your return policy?")
    conversation.say("I want to check my order")
    conversation.say("RG-10421")
    conversation.say("anna.berg@example.com")
    state = tracker(service_url(stack, 'rasa'), conversation.sender)
    assert state["slots"]["handoff_requested"] is False
    assert not [e for e in state["events"] if e["event"] == "slot" and e["name"] == "handoff_requested"]

    replies = conversation.say("I want to talk to a person")
    assert replies and replies[0] in responses["utter_handoff"]
    assert tracker(service_url(stack, 'rasa'), conversation.sender)["slots"]["handoff_requested"] is True
    # The action server logs each call of action_human_handoff; the log is copied line by line.
    log = wait_until(lambda: handoff_line in actions_log.read_text() and actions_log.read_text(),
                     what="the action server logging the handoff")
    assert log.count(handoff_line) == 1, "the action server ran action_human_handoff on turns that did not ask"
