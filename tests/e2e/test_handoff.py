"""A handoff through the whole stack: Rasa's form asks how a person can reach the visitor, the action
server writes one ticket in the store database and tells the team once, on a fake Slack Web API.

The stack's action server is restarted with HANDOFF_SLACK_* pointing at the fake (as test_faults.py
points it at a fake LLM) and put back afterwards.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import Conversation, service_url
from tests.ridgeline_rasa.fake_apis import FakeSlack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOT_TOKEN = "xoxb-e2e-handoff-token"
CHANNEL = "C0E2EHANDOFF"
SUPPORT_HOURS = ("A person from our team will answer within our support hours: Monday to Friday 08:00-18:00 "
                 "and Saturday 09:00-14:00 (UK time).")


@contextlib.contextmanager
def actions_with(stack, env: dict[str, str]):
    """Restart the stack's action server with ``env`` added; put it back afterwards."""
    actions = next(s for s in stack.services if s.name == "actions")
    saved = dict(actions.env)
    stack.stop(["actions"])
    actions.env.update(env)
    stack.start(["actions"])
    try:
        yield actions
    finally:
        stack.stop(["actions"])
        actions.env.clear()
        actions.env.update(saved)
        stack.start(["actions"])


@dataclass
class Team:
    slack: FakeSlack
    store_db: str  # the action server's ORDERS_DB_URL


@pytest.fixture(scope="module")
def team(stack):
    with FakeSlack() as slack, actions_with(stack, {"HANDOFF_SLACK_BOT_TOKEN": BOT_TOKEN,
                                                    "HANDOFF_SLACK_CHANNEL": CHANNEL,
                                                    "HANDOFF_SLACK_API_URL": f"{slack.url}/api"}) as actions:
        yield Team(slack, actions.env["ORDERS_DB_URL"])


@pytest.fixture
def talk(stack, request) -> Conversation:
    return Conversation(service_url(stack, "rasa"), sender=f"handoff-{request.node.name}")


def tickets_of(store_db: str, sender: str) -> list:
    engine = sa.create_engine(store_db)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT * FROM tickets WHERE sender_id = :s"), {"s": sender}))
    finally:
        engine.dispose()


def notifications(slack: FakeSlack, number: str, settle_s: float = 1.0) -> list:
    """The chat.postMessage calls about ticket ``number``, once the first arrived and a moment passed."""
    slack.wait_for("chat.postMessage", timeout_s=10)
    time.sleep(settle_s)  # a second one would have arrived by now
    return [c for c in slack.calls_to("chat.postMessage") if f"New ticket {number} " in c.params.get("text", "")]


def ticket_number(reply: str) -> str:
    match = re.search(r"I've opened ticket (T-\d{6}) for you\.", reply)
    assert match, reply
    return match.group(1)


def test_a_visitor_asks_for_a_person_leaves_an_email_and_gets_a_ticket(team, talk, responses):
    replies = talk.say("I want to talk to a person")
    assert replies == [responses["utter_handoff"][0], responses["utter_ask_handoff_contact"][0]], replies

    [reply] = talk.say("anna@example.com")
    number = ticket_number(reply)
    assert SUPPORT_HOURS in reply and "anna@example.com" in reply

    [ticket] = tickets_of(team.store_db, talk.sender)
    assert (ticket.number, ticket.channel, ticket.reason, ticket.contact, ticket.status) == (
        number, "rest", "I want to talk to a person", "anna@example.com", "open")
    assert "anna@example.com" not in ticket.turns and "<email>" in ticket.turns

    [call] = notifications(team.slack, number)
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}" and call.params["channel"] == CHANNEL
    assert "anna@example.com" not in call.params["text"]


def test_a_visitor_who_declines_gets_a_ticket_without_a_contact(team, talk, responses):
    assert talk.say("can I speak to a real person?")[-1] == responses["utter_ask_handoff_contact"][0]
    [reply] = talk.say("no thanks, just the ticket")
    number = ticket_number(reply)
    assert SUPPORT_HOURS in reply and f"quote {number}" in reply
    [ticket] = tickets_of(team.store_db, talk.sender)
    assert ticket.contact is None
    assert len(notifications(team.slack, number)) == 1


def test_the_email_of_an_order_look_up_is_not_asked_again(team, talk, responses):
    assert talk.say("where is my order RG-10421?")[-1] in responses["utter_ask_email"]
    assert any("RG-10421" in r for r in talk.say("anna.berg@example.com"))
    replies = talk.say("I want to talk to a person")
    assert replies[0] == responses["utter_handoff"][0]
    assert responses["utter_ask_handoff_contact"][0] not in replies, replies
    number = ticket_number(replies[-1])
    [ticket] = tickets_of(team.store_db, talk.sender)
    assert (ticket.number, ticket.contact) == (number, "anna.berg@example.com")
    assert len(notifications(team.slack, number)) == 1
