"""Rasa's and the action server's /metrics through the real stack: a scripted conversation, exact deltas.

The stack is shared with the other end-to-end tests, so every count is read before and after the
conversation and only the difference is checked.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import service_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GREETING = "hi"
FAQ = "what is your return policy?"
OPEN_QUESTION = "what sleeping bag should I take for a winter camp in the Alps?"
GIBBERISH = "asdkjh qwe zxcvb"
HANDOFF = "I want to talk to a person"


def scrape(stack, service: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a service's /metrics (no token: Prometheus sends none)."""
    response = httpx.get(f"{service_url(stack, service)}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def deltas_of(before: dict, after: dict, name: str) -> dict[tuple, float]:
    return {key[1]: after[key] - before.get(key, 0.0) for key in after
            if key[0] == name and after[key] != before.get(key, 0.0)}


def test_a_scripted_conversation_is_counted_exactly(stack, conversation, responses):
    rasa_before, actions_before = scrape(stack, "rasa"), scrape(stack, "actions")
    replies = {text: conversation.say(text) for text in (GREETING, FAQ, OPEN_QUESTION, GIBBERISH, HANDOFF)}
    rasa, actions = scrape(stack, "rasa"), scrape(stack, "actions")

    assert replies[GREETING][0] in responses["utter_greet"]
    assert replies[FAQ][0] in responses["utter_faq/returns"]
    assert replies[HANDOFF][0] in responses["utter_handoff"]
    # The tiny model's words may be withheld by the reply guard: an apology, which Rasa counts too.
    apologies = sum(replies[text][0] in responses["utter_llm_unavailable"] for text in (OPEN_QUESTION, GIBBERISH))

    # the gate: five turns on the REST channel, each timed; none turned away, none silent
    assert delta(rasa_before, rasa, "rasa_turns_total", channel="rest") == 5
    assert deltas_of(rasa_before, rasa, "rasa_turns_total") == {(("channel", "rest"),): 5}
    assert delta(rasa_before, rasa, "rasa_turn_duration_seconds_count", channel="rest") == 5
    assert delta(rasa_before, rasa, "rasa_turn_duration_seconds_sum", channel="rest") > 0
    assert delta(rasa_before, rasa, "rasa_rate_limited_total") == 0
    assert delta(rasa_before, rasa, "rasa_apologies_total", reason="no_reply") == 0

    # the turns' events: one intent per message, the gibberish a fallback, two LLM turns, one handoff
    assert deltas_of(rasa_before, rasa, "rasa_intents_total") == {
        (("intent", "greet"),): 1, (("intent", "faq"),): 1, (("intent", "open_question"),): 1,
        (("intent", "nlu_fallback"),): 1, (("intent", "human_handoff"),): 1}
    assert delta(rasa_before, rasa, "rasa_intent_confidence_count") == 5
    assert delta(rasa_before, rasa, "rasa_fallbacks_total") == 1
    assert delta(rasa_before, rasa, "rasa_llm_turns_total") == 2
    assert delta(rasa_before, rasa, "rasa_handoffs_total") == 1
    assert delta(rasa_before, rasa, "rasa_apologies_total", reason="llm_unavailable") == apologies

    # the action server: the two LLM turns, the handoff and its form, each answered and timed; nothing else called
    assert deltas_of(actions_before, actions, "action_calls_total") == {
        (("action", "action_llm_response"), ("outcome", "ok")): 2,
        (("action", "action_human_handoff"), ("outcome", "ok")): 1,
        # the handoff form starts: Rasa's form code calls its validation action twice, even with nothing to validate
        (("action", "validate_handoff_form"), ("outcome", "ok")): 2}
    assert delta(actions_before, actions, "action_duration_seconds_count", action="action_llm_response") == 2
    assert delta(actions_before, actions, "action_duration_seconds_count", action="action_human_handoff") == 1
    assert delta(actions_before, actions, "action_llm_replies_total", outcome="apology") == apologies


def test_metrics_is_open_to_prometheus_and_not_a_channel(stack):
    """Prometheus scrapes /metrics without a token; it lives outside /webhooks, the only public prefix."""
    rasa = service_url(stack, "rasa")
    assert httpx.get(f"{rasa}/metrics", timeout=10).status_code == 200
    assert httpx.get(f"{rasa}/webhooks/rest/metrics", timeout=10).status_code in (404, 405)
