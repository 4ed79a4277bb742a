"""A tracker store written the way Rasa 3.6 writes it: its ``events`` table, events as ``as_dict()`` gives them.

``TrackerFile`` creates Rasa's schema (rasa/core/tracker_store.py, ``SQLTrackerStore.SQLEvent``) on
any SQLAlchemy URL (SQLite here, PostgreSQL in test_postgres.py) and appends conversations built
from the helpers below; test_rasa_schema.py checks the shapes against Rasa's own classes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.servers import ROOT

RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"
DAY_S = 86_400

metadata = sa.MetaData()
# Rasa 3.6's SQLTrackerStore.SQLEvent
EVENTS = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def user(text: str, intent: str, confidence: float, t: float, entities: list[dict] | None = None,
         channel: str = "rest", ranking: list[tuple[str, float]] | None = None,
         retrieval: str | None = None) -> dict[str, Any]:
    parse = {"intent": {"name": intent, "confidence": confidence}, "entities": entities or [], "text": text,
             "message_id": f"m{t}", "metadata": {},
             "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])]}
    if retrieval:
        parse["response_selector"] = {intent: {"response": {"intent_response_key": retrieval,
                                                            "responses": [{"text": "..."}]}}}
    return {"event": "user", "timestamp": t, "metadata": {}, "text": text, "parse_data": parse,
            "input_channel": channel, "message_id": f"m{t}"}


def bot(text: str, t: float, response: str | None = None) -> dict[str, Any]:
    metadata = {"utter_action": response} if response else {}
    return {"event": "bot", "timestamp": t, "metadata": metadata, "text": text,
            "data": {"elements": None, "quick_replies": None, "buttons": None, "attachment": None, "image": None,
                     "custom": None}}


def action(name: str, t: float, policy: str | None = "RulePolicy", confidence: float | None = 1.0) -> dict[str, Any]:
    return {"event": "action", "timestamp": t, "metadata": {}, "name": name, "policy": policy,
            "confidence": confidence, "action_text": None, "hide_rule_turn": False}


def slot(name: str, value: Any, t: float) -> dict[str, Any]:
    return {"event": "slot", "timestamp": t, "metadata": {}, "name": name, "value": value}


def loop(name: str | None, t: float) -> dict[str, Any]:
    return {"event": "active_loop", "timestamp": t, "metadata": {}, "name": name}


def session(t: float) -> list[dict[str, Any]]:
    return [action("action_session_start", t, None, None), {"event": "session_started", "timestamp": t, "metadata": {}},
            action("action_listen", t, None, None)]


def entity(text: str, name: str, value: str, within: str, extractor: str = "RegexEntityExtractor") -> dict[str, Any]:
    start = within.index(text)
    return {"entity": name, "start": start, "end": start + len(text), "value": value, "extractor": extractor}


def llm_reply(text: str, t: float, reply_id: str, sources: list[str] | None = None) -> dict[str, Any]:
    """An LLM reply as action_llm_response sends it (ridgeline.feedback): two buttons, and its
    reply_id and sources in the metadata (Rasa keeps a custom key only when it is not empty)."""
    from ridgeline import feedback

    event = bot(text, t)
    event["data"]["buttons"] = feedback.buttons(reply_id)
    event["metadata"] = {feedback.REPLY_ID_METADATA: reply_id}
    if sources:
        event["metadata"][feedback.SOURCES_METADATA] = sources
    return event


def click(verdict: str, reply_id: str, t: float, channel: str = "rest") -> list[dict[str, Any]]:
    """A click on a verdict button: the payload as Rasa parses it (both entities span its JSON),
    action_record_feedback and its thanks."""
    from ridgeline import feedback

    text = feedback.payload(verdict, reply_id)
    start = text.index("{")
    event = user(text, feedback.INTENT, 1.0, t, channel=channel)
    event["parse_data"]["entities"] = [{"entity": name, "start": start, "end": len(text), "value": value}
                                       for name, value in ((feedback.VERDICT_ENTITY, verdict),
                                                           (feedback.REPLY_ID_ENTITY, reply_id))]
    return [event, action("action_record_feedback", t + 0.1),
            bot("Thanks for telling us.", t + 0.2, feedback.THANKS_RESPONSE), action("action_listen", t + 0.3)]


@dataclass
class TrackerFile:
    url: str
    engine: sa.Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url)
        metadata.create_all(self.engine)

    def add(self, sender: str, events: list[dict[str, Any]]) -> None:
        rows = [{"sender_id": sender, "type_name": e["event"], "timestamp": e.get("timestamp"),
                 "intent_name": ((e.get("parse_data") or {}).get("intent") or {}).get("name"),
                 "action_name": e.get("name"), "data": json.dumps(e)} for e in events]
        with self.engine.begin() as connection:
            connection.execute(EVENTS.insert(), rows)

    def count(self, sender: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(EVENTS)
        if sender is not None:
            query = query.where(EVENTS.c.sender_id == sender)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()


ORDER_TEXT = "where is my order RG-10421? mail me at anna.berg@example.com"


def sample_conversations(now: float) -> dict[str, list[dict[str, Any]]]:
    """Conversations with every reason, and one with none; times relative to ``now``."""
    t = now - 3600
    return {
        # nlu_fallback, then the same thing again, then the LLM's apology
        "visitor-fallback": [
            *session(t),
            user("asdkjh qwe tent??", "nlu_fallback", 0.5, t + 1,
                 ranking=[("nlu_fallback", 0.5), ("product_search", 0.31), ("greet", 0.1)]),
            action("action_llm_response", t + 2), bot("Sorry, I can't answer that right now.", t + 3,
                                                      "utter_llm_unavailable"),
            action("action_listen", t + 4),
            user("asdkjh qwe tent?", "nlu_fallback", 0.5, t + 5, ranking=[("nlu_fallback", 0.5), ("greet", 0.2)]),
            action("action_llm_response", t + 6), bot("Here is a tent.", t + 7),
        ],
        # personal data, an entity, low confidence, a handoff
        "visitor-order": [
            *session(t + 100),
            user(ORDER_TEXT, "check_order_status", 0.42, t + 101, channel="socketio",
                 entities=[entity("RG-10421", "order_id", "RG-10421", ORDER_TEXT),
                           entity("anna.berg@example.com", "email", "anna.berg@example.com", ORDER_TEXT)]),
            action("order_status_form", t + 102), loop("order_status_form", t + 102),
            slot("order_id", "RG-10421", t + 102), slot("email", "anna.berg@example.com", t + 102),
            action("action_check_order_status", t + 103),
            bot("Your order RG-10421 ships tomorrow; call +44 20 7946 0321.", t + 104),
            loop(None, t + 104),
            user("I want to talk to a person", "human_handoff", 0.97, t + 105, channel="socketio"),
            action("action_human_handoff", t + 106), slot("handoff_requested", True, t + 106),
            bot("I'll pass this conversation to our support team.", t + 107, "utter_handoff"),
        ],
        # a message the tracker shows no reply to: the gate said utter_no_reply
        "visitor-silent": [*session(t + 200), user("hi", "greet", 0.99, t + 201), action("action_listen", t + 202)],
        # nothing wrong
        "visitor-happy": [
            *session(t + 300), user("hello", "greet", 0.99, t + 301), action("utter_greet", t + 302),
            bot("Hi! I'm Sherpa.", t + 303, "utter_greet"), action("action_listen", t + 304),
            user("what is your return policy?", "faq", 0.95, t + 305, retrieval="faq/returns"),
            action("utter_faq", t + 306), bot("30 days.", t + 307, "utter_faq/returns"),
        ],
        # old: 200 days ago
        "visitor-old": [*session(now - 200 * DAY_S), user("hi", "greet", 0.99, now - 200 * DAY_S + 1),
                        action("utter_greet", now - 200 * DAY_S + 2), bot("Hi!", now - 200 * DAY_S + 3, "utter_greet")],
    }


@pytest.fixture
def tracker_db(tmp_path) -> TrackerFile:
    import time

    db = TrackerFile(f"sqlite:///{tmp_path / 'tracker.db'}")
    now = time.time()
    for sender, events in sample_conversations(now).items():
        db.add(sender, events)
    return db


@pytest.fixture
def review(tracker_db, tmp_path, monkeypatch, capsys):
    """Run ``python -m review`` in-process against ``tracker_db``: (exit code, stdout, stderr)."""
    from review.cli import main

    monkeypatch.delenv("DB_HOST", raising=False)
    monkeypatch.setenv("RASA_AUTH_TOKEN", "review-test-token")
    monkeypatch.setenv("ORDERS_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")

    def run(*args: str, db: str | None = None) -> tuple[int, str, str]:
        code = main([args[0], "--db", db or tracker_db.url, "--state-dir", str(tmp_path / "state"), *args[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    return run
