"""Per-sender rate limiting and message limits on Rasa's channels (ridgeline_rasa/channels/gate.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import Conversation, service_url
from tests.support.servers import tracker_events, turns

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMIT = 15  # RATE_LIMIT_MESSAGES's default, per 30 s


def post(url: str, sender: str, text: str) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=120)


def user_messages(url: str, sender: str) -> list[str]:
    return [text for kind, text in turns(tracker_events(url, sender)) if kind == "user"]


def test_a_flood_from_one_sender_is_turned_away_and_the_others_are_served(stack, responses):
    rasa = service_url(stack, "rasa")
    with ThreadPoolExecutor(max_workers=12) as pool:
        flood = [pool.submit(post, rasa, "flooder", f"hi number {i}") for i in range(40)]
        calm = [pool.submit(Conversation(rasa, f"calm-{i}").say, "what is your return policy?") for i in range(3)]
        flood_replies = [f.result() for f in flood]
        calm_replies = [f.result() for f in calm]

    statuses = sorted(r.status_code for r in flood_replies)
    assert statuses.count(200) == LIMIT and statuses.count(429) == 40 - LIMIT, statuses
    refused = next(r for r in flood_replies if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1 and "wait" in refused.json()["error"]
    assert refused.json()["text"] in responses["utter_slow_down"]
    # The refused messages never reached Rasa's NLU or the tracker: they cost the others nothing.
    assert len(user_messages(rasa, "flooder")) == LIMIT
    for replies in calm_replies:
        assert replies and replies[0] in responses["utter_faq/returns"]


def test_a_long_message_is_answered_and_the_assistant_says_it_read_only_part(stack, responses):
    talk = Conversation(service_url(stack, "rasa"), "long-message")
    question = "I am planning a two week trek in Patagonia and wonder about gear. " * 1600  # ~100 KB
    replies = talk.say(question)
    note = responses["utter_message_truncated"][0].replace("{max_chars}", "2,000")
    assert replies and replies[0] == note, replies
    assert len(replies) == 2 and replies[1].strip()
    stored = user_messages(service_url(stack, "rasa"), "long-message")
    assert stored == [question[:4000]], "Rasa should keep the message cut to MAX_MESSAGE_CHARS"
