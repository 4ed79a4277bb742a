"""Rasa on a real PostgreSQL tracker store and a real Redis lock store, two processes at once."""

from __future__ import annotations

import threading
import time

import pytest

from actions import orders_db
from tests.support.replicas import LLM_DELAY_S, LLM_REPLY
from tests.support.servers import domain_responses, say, tracker_events, turns, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

OPEN_QUESTION = "what sleeping bag should I take for a winter camp in the Alps?"


@pytest.fixture(scope="module")
def responses() -> dict[str, list[str]]:
    return domain_responses()


def test_conversation_survives_a_rasa_restart(replicas, postgres, responses):
    sender = "restart-survivor"
    assert say(replicas.url_a, sender, "I want to check my order")[-1] in responses["utter_ask_order_id"]
    stored = postgres.query("SELECT count(*) FROM events WHERE sender_id = %s", sender)[0][0]
    assert stored > 0, "the turn is not in PostgreSQL's events table"

    replicas.restart_a()

    # The form is still waiting for the order id: the dialogue state came back from PostgreSQL.
    assert say(replicas.url_a, sender, "RG-10421")[-1] in responses["utter_ask_email"]
    replies = say(replicas.url_a, sender, "anna.berg@example.com")
    assert orders_db.describe(orders_db.load_sample_orders()[0]) in replies
    texts = [text for kind, text in turns(tracker_events(replicas.url_a, sender)) if kind == "user"]
    assert texts == ["I want to check my order", "RG-10421", "anna.berg@example.com"]


def test_messages_sent_at_once_are_handled_in_order_under_the_redis_lock(replicas, redis, responses):
    """A slow LLM turn on Rasa A, then a greeting on Rasa B while A still holds the conversation.

    Without a shared lock B would answer at once and write its turn into the middle of A's;
    with the Redis lock B waits for A's ticket, so both turns are whole and in arrival order.
    """
    sender = "two-at-once"
    finished: dict[str, tuple[float, list[str]]] = {}

    def send(url: str, text: str, key: str) -> None:
        replies = say(url, sender, text)
        finished[key] = (time.monotonic(), replies)

    first = threading.Thread(target=send, args=(replicas.url_a, OPEN_QUESTION, "first"))
    first.start()
    wait_until(lambda: redis.command_reply("EXISTS", f"ridgeline:lock:{sender}") == b":1\r\n",
               timeout_s=20, interval_s=0.05, what="Rasa A taking the conversation's lock in Redis")
    second_sent = time.monotonic()
    second = threading.Thread(target=send, args=(replicas.url_b, "hi", "second"))
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)

    first_done, first_replies = finished["first"]
    second_done, second_replies = finished["second"]
    assert first_replies == [LLM_REPLY]
    assert second_replies and second_replies[0] in responses["utter_greet"]
    assert second_done > first_done, "Rasa B answered before Rasa A had finished the earlier message"
    assert second_done - second_sent > LLM_DELAY_S / 3, "Rasa B did not wait for the lock"
    conversation = turns(tracker_events(replicas.url_b, sender))
    assert conversation == [("user", OPEN_QUESTION), ("bot", LLM_REPLY),
                            ("user", "hi"), ("bot", second_replies[0])]
    assert redis.command_reply("EXISTS", f"ridgeline:lock:{sender}") == b":0\r\n", "the lock was not released"


def test_two_rasa_processes_serve_one_conversation(replicas, responses):
    sender = "shared-conversation"
    assert say(replicas.url_a, sender, "where is my order?")[-1] in responses["utter_ask_order_id"]
    assert say(replicas.url_b, sender, "RG-10423")[-1] in responses["utter_ask_email"]
    replies = say(replicas.url_a, sender, "mia.rossi@example.com")
    assert any(r.startswith("Your order RG-10423") for r in replies), replies
    assert say(replicas.url_b, sender, "thanks")[-1] in responses["utter_youre_welcome"]

    seen_by_a, seen_by_b = tracker_events(replicas.url_a, sender), tracker_events(replicas.url_b, sender)
    assert seen_by_a == seen_by_b
    assert [t for kind, t in turns(seen_by_a) if kind == "user"] == [
        "where is my order?", "RG-10423", "mia.rossi@example.com", "thanks"]
