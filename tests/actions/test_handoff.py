"""The handoff (actions/handoff.py, actions/tickets.py): the contact form's validation, the known
email, the ticket in a real SQLite store database, what the visitor is told, the HANDOFF_* settings.
The notifications to Slack and SMTP servers: test_handoff_notify.py; the whole stack: tests/e2e/test_handoff.py."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import sqlalchemy as sa
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import db, handoff, orders_db, tickets
from actions.config import ActionServerConfig, ConfigError, READS, VARIABLES, from_env
from ridgeline import knowledge

HOURS = "Monday to Friday 08:00-18:00 and Saturday 09:00-14:00 (UK time)"


def user(text: str, intent: str = "open_question", entities: list[dict] | None = None,
         channel: str = "rest") -> dict[str, Any]:
    return {"event": "user", "text": text, "input_channel": channel,
            "parse_data": {"intent": {"name": intent}, "entities": entities or []}}


def bot(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text}


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def loop(name: str | None) -> dict[str, Any]:
    return {"event": "active_loop", "name": name}


def tracker(events: list[dict], slots: dict | None = None, sender: str = "visitor-1") -> Tracker:
    latest = next((e for e in reversed(events) if e["event"] == "user"), None)
    return Tracker(sender_id=sender, slots=slots or {},
                   latest_message={"text": latest["text"], **latest["parse_data"]} if latest else {},
                   events=events, paused=False, followup_action=None, active_loop={}, latest_action_name=None)


ASKED = [action("action_listen"), user("hi", "greet"), bot("Hi, I'm Sherpa!"), action("action_listen"),
         user("I want to talk to a person", "human_handoff"), action("action_human_handoff"),
         bot("I'll pass this conversation to our support team."), slot("handoff_requested", True),
         action("handoff_form"), loop("handoff_form"), slot("requested_slot", "handoff_contact"),
         bot("How can they reach you?"), action("action_listen")]


def validate(value: Any, *answers: dict) -> tuple[Any, list]:
    dispatcher = CollectingDispatcher()
    result = asyncio.run(handoff.ValidateHandoffForm().validate_handoff_contact(
        value, dispatcher, tracker(ASKED + list(answers)), {}))
    return result["handoff_contact"], [m.get("response") or m.get("text") for m in dispatcher.messages]


# ---------------------------------------------------------------- the form's validation


@pytest.mark.parametrize("value, typed, expected", [
    ("Anna.Berg@Example.com", "Anna.Berg@Example.com", "anna.berg@example.com"),   # the email entity
    ("sure, it's anna@example.com thanks", "sure, it's anna@example.com thanks", "anna@example.com"),  # from_text
    ("<jo@mail.example>", "<jo@mail.example>", "jo@mail.example"),
])
def test_an_email_address_is_the_contact_normalised(value, typed, expected):
    assert validate(value, user(typed, "check_order_status")) == (expected, [])


@pytest.mark.parametrize("value, typed", [
    ("declined", "no thanks"),                        # from_intent deny -> "declined"
    ("just the ticket", "just the ticket"),           # any intent: the words decline
    ("No email, just open the ticket.", "No email, just open the ticket."),
    ("I'd rather not", "I'd rather not"),
    ("nope", "nope"),
])
def test_a_decline_opens_the_ticket_without_a_contact(value, typed):
    assert validate(value, user(typed, "deny")) == (handoff.DECLINED, [])


def test_an_unclear_answer_is_asked_again_once_then_taken_as_a_decline():
    assert validate("what are your opening hours?", user("what are your opening hours?", "faq")) == (
        None, ["utter_invalid_email"])
    second = [user("what are your opening hours?", "faq"), bot("That doesn't look like an email address."),
              action("handoff_form"), action("action_listen"), user("anna at example", "open_question")]
    assert validate("anna at example", *second) == (handoff.DECLINED, [])


def test_a_known_email_prefilled_by_the_handoff_is_accepted_on_activation():
    events = ASKED[:8] + [slot("handoff_contact", "anna@example.com")]
    dispatcher = CollectingDispatcher()
    result = asyncio.run(handoff.ValidateHandoffForm().validate_handoff_contact(
        "anna@example.com", dispatcher, tracker(events), {}))
    assert result == {"handoff_contact": "anna@example.com"} and not dispatcher.messages


# ---------------------------------------------------------------- action_human_handoff


def run_handoff(events: list[dict], slots: dict | None = None) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    result = asyncio.run(handoff.ActionHumanHandoff().run(dispatcher, tracker(events, slots), {}))
    return [(e["name"], e["value"]) for e in result], [m.get("response") for m in dispatcher.messages]


def test_the_handoff_flags_the_conversation_and_leaves_the_question_to_the_form():
    events, said = run_handoff([user("I want to talk to a person", "human_handoff")])
    assert events == [("handoff_requested", True)]
    assert said == ["utter_handoff"]


def test_an_email_given_in_the_same_message_is_not_asked_again():
    events, _ = run_handoff([user("a human please, I'm anna@example.com", "human_handoff")],
                            {"email": "Anna@Example.com"})
    assert events == [("handoff_requested", True), ("handoff_contact", "anna@example.com")]


def test_the_order_forms_email_is_not_asked_again_after_the_look_up_cleared_it():
    order = [user("where is RG-10421", "check_order_status"), slot("order_id", "RG-10421"),
             user("anna.berg@example.com", "check_order_status"), slot("email", "anna.berg@example.com"),
             action("action_check_order_status"), slot("order_id", None), slot("email", None),
             user("let me talk to a human", "human_handoff")]
    events, _ = run_handoff(order, {"email": None})
    assert ("handoff_contact", "anna.berg@example.com") in events


def test_a_declined_earlier_handoff_is_no_known_email():
    events, _ = run_handoff([slot("handoff_contact", "declined"), slot("handoff_contact", None),
                             user("human please", "human_handoff")])
    assert events == [("handoff_requested", True)]


# ---------------------------------------------------------------- the ticket and what the visitor is told


def test_the_support_hours_come_from_the_store_facts():
    assert handoff.support_hours(knowledge.load()) == HOURS
    facts = knowledge.parse({**_store_yaml(), "faq": {**_store_yaml()["faq"], "contact_hours": {
        "question": "When?", "answer": "Our support team answers every day 07:00-22:00 (CET), by phone."}}})
    assert handoff.support_hours(facts) == "every day 07:00-22:00 (CET)"


def _store_yaml() -> dict:
    import yaml
    from ridgeline.paths import STORE_FACTS
    return yaml.safe_load(STORE_FACTS.read_text(encoding="utf-8"))


@pytest.fixture
def config(tmp_path) -> ActionServerConfig:
    return ActionServerConfig(orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", orders_seed_sample=False)


def ticket_rows(config: ActionServerConfig) -> list:
    engine = sa.create_engine(config.orders_db_url)
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT * FROM tickets ORDER BY id")))


def open_ticket(config: ActionServerConfig, contact: str | None, events: list[dict] | None = None,
                sender: str = "visitor-1") -> tuple[list, list[str]]:
    events = (events or ASKED) + [user(contact or "no thanks", "check_order_status" if contact else "deny",
                                       channel="socketio")]
    dispatcher = CollectingDispatcher()
    result = asyncio.run(handoff.ActionOpenTicket(config).run(
        dispatcher, tracker(events, {"handoff_contact": contact or handoff.DECLINED}, sender), {}))
    return [(e["name"], e["value"]) for e in result], [m["text"] for m in dispatcher.messages]


def test_a_ticket_with_an_email_is_stored_and_the_visitor_told_its_number_and_the_hours(config):
    events, said = open_ticket(config, "anna@example.com")
    [row] = ticket_rows(config)
    assert re.fullmatch(r"T-\d{6}", row.number)
    assert (row.sender_id, row.channel, row.reason, row.contact, row.status) == (
        "visitor-1", "socketio", "I want to talk to a person", "anna@example.com", "open")
    assert row.created_at and row.closed_at is None
    # the last turns, personal data masked
    assert "visitor: I want to talk to a person" in row.turns and "Sherpa: Hi, I'm Sherpa!" in row.turns
    assert "anna@example.com" not in row.turns and "visitor: <email>" in row.turns
    assert said == [f"I've opened ticket {row.number} for you. A person from our team will answer within our "
                    f"support hours: {HOURS}. They will write to you at anna@example.com."]
    assert events == [("handoff_contact", None)]  # a later handoff asks (or finds the email) afresh


def test_a_declined_contact_leaves_it_empty_and_tells_the_visitor_how_to_quote_the_ticket(config):
    _, [said] = open_ticket(config, None)
    [row] = ticket_rows(config)
    assert row.contact is None
    assert said.startswith(f"I've opened ticket {row.number} for you. A person from our team will answer within our "
                           f"support hours: {HOURS}.")
    assert f"quote {row.number} when you email help@ridgeline-outfitters.example" in said


def test_every_ticket_gets_its_own_number_even_when_a_draw_is_taken(config, monkeypatch):
    open_ticket(config, "a@example.com", sender="one")
    [first] = ticket_rows(config)
    draws = iter([first.number, first.number, "T-000002"])
    monkeypatch.setattr(tickets, "new_number", lambda: next(draws))
    open_ticket(config, "b@example.com", sender="two")
    assert [(r.sender_id, r.number) for r in ticket_rows(config)] == [("one", first.number), ("two", "T-000002")]


def test_the_store_database_down_still_answers_the_visitor(config, monkeypatch):
    def down(*args):
        raise sa.exc.OperationalError("connect", {}, Exception("could not connect to server"))

    monkeypatch.setattr(orders_db, "cached_engine", down)
    events, [said] = open_ticket(config, "anna@example.com")
    assert said.startswith("Sorry, I couldn't open a ticket just now. Please email help@ridgeline-outfitters.example")
    assert HOURS in said and events == [("handoff_contact", None)]


def test_the_reason_is_the_message_that_asked_not_the_contact_answer():
    events = ASKED + [user("anna@example.com", "check_order_status")]
    assert tickets.reason_of(events, handoff.HANDOFF_ACTION) == "I want to talk to a person"
    assert tickets.reason_of([user("hello")], handoff.HANDOFF_ACTION) == "hello"


def test_only_the_last_turns_are_kept():
    events = [user(f"message {n}") for n in range(30)]
    kept = tickets.last_turns(events).splitlines()
    assert len(kept) == tickets.TURNS_KEPT and kept[-1] == "visitor: message 29"


def test_the_migration_creates_the_tickets_table_on_an_older_database(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "0002_products")
    assert not sa.inspect(engine).has_table("tickets")
    db.migrate(engine)
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("tickets")}
    assert set(columns) == {"id", "number", "sender_id", "channel", "reason", "contact", "turns", "status",
                            "created_at", "closed_at"}
    assert columns["contact"]["nullable"] and columns["closed_at"]["nullable"]
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(sa.text("INSERT INTO tickets (number, sender_id, channel, reason, turns, status, "
                                   "created_at) VALUES ('T-000001', 's', 'rest', 'r', '', 'pending', '2026-01-01')"))


# ---------------------------------------------------------------- HANDOFF_* settings


def test_the_handoff_settings_are_read_and_given_to_the_action_server():
    config = from_env({"HANDOFF_SLACK_BOT_TOKEN": "xoxb-1", "HANDOFF_SLACK_CHANNEL": "C0123",
                       "HANDOFF_SMTP_HOST": "mail.example", "HANDOFF_SMTP_PORT": "2525",
                       "HANDOFF_SMTP_FROM": "sherpa@shop.example", "HANDOFF_SMTP_TO": "a@shop.example, b@shop.example",
                       "HANDOFF_SMTP_STARTTLS": "false", "HANDOFF_NOTIFY_TIMEOUT_S": "2"})
    assert config.handoff_slack_configured and config.handoff_smtp_configured
    assert config.handoff_slack_api_url == "https://slack.com/api"
    assert config.handoff_smtp_to == ("a@shop.example", "b@shop.example")
    assert (config.handoff_smtp_port, config.handoff_smtp_starttls, config.handoff_notify_timeout_s) == (2525, False, 2)
    assert "xoxb-1" not in repr(config)
    defaults = from_env({})
    assert not defaults.handoff_slack_configured and not defaults.handoff_smtp_configured
    assert defaults.handoff_notify_timeout_s <= 3
    names = [name for name in VARIABLES if name.startswith("HANDOFF_")]
    assert len(names) == 11 and all(READS.allows(name) for name in names)


@pytest.mark.parametrize("env, message", [
    ({"HANDOFF_SLACK_BOT_TOKEN": "xoxb-1"}, "set HANDOFF_SLACK_CHANNEL too"),
    ({"HANDOFF_SLACK_CHANNEL": "C0123"}, "set HANDOFF_SLACK_BOT_TOKEN too"),
    ({"HANDOFF_SLACK_API_URL": "slack.com/api"}, "HANDOFF_SLACK_API_URL='slack.com/api' is not an http(s) URL"),
    ({"HANDOFF_SMTP_HOST": "mail.example"}, "set HANDOFF_SMTP_FROM (the sender) and HANDOFF_SMTP_TO"),
    ({"HANDOFF_SMTP_USER": "me"}, "HANDOFF_SMTP_USER and HANDOFF_SMTP_PASSWORD go together"),
    ({"HANDOFF_SMTP_PORT": "0"}, "HANDOFF_SMTP_PORT=0 is not a port"),
    ({"HANDOFF_SMTP_STARTTLS": "perhaps"}, "true or false"),
    ({"HANDOFF_NOTIFY_TIMEOUT_S": "60"}, "HANDOFF_NOTIFY_TIMEOUT_S=60 must be above 0 and at most 30 s"),
])
def test_bad_handoff_settings_say_what_to_change(env, message):
    with pytest.raises(ConfigError) as error:
        from_env(env)
    assert message in str(error.value)
