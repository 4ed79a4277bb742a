"""Conversations exported from Rasa's SQL tracker store (SQLite or PostgreSQL, any SQLAlchemy URL).

Rasa 3.x's ``SQLTrackerStore`` keeps one row per event in the ``events`` table
(``id, sender_id, type_name, timestamp, intent_name, action_name, data``), with
the event as JSON in ``data``. A conversation is one sender's user and bot
utterances between ``session_started`` / ``restart`` events, read in the order
they happened, exactly as the action server reads the tracker. Bot responses
that should not be learned (the apology sent when the LLM was down) drop the
turn they answered and split the conversation there. A visitor's verdict on a reply and
its thanks (``ridgeline.feedback``) are left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Iterable, Iterator

from ridgeline.feedback import is_feedback_event
from training.formats import Conversation, DataError

logger = logging.getLogger(__name__)

SESSION_BREAKS = {"session_started", "restart"}
UTTERANCES = {"user", "bot"}


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages and stats."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by read_tracker
        return url


def read_tracker(url: str, exclude_responses: Iterable[str] = ()) -> Iterator[Conversation]:
    """Every conversation in the tracker store at ``url``, oldest event first per sender."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = display_url(url)
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DataError(shown, f"not a usable SQLAlchemy URL ({exc}); e.g. sqlite:///rasa.db or "
                               "postgresql+psycopg://user:password@host/rasa") from None
    excluded = set(exclude_responses)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("events"):
                raise DataError(shown, "the database has no 'events' table; is it a Rasa SQL tracker store?")
            rows = connection.execution_options(stream_results=True).execute(
                text(
                    "SELECT id, sender_id, type_name, data FROM events "
                    "WHERE type_name IN ('user', 'bot', 'session_started', 'restart') "
                    "ORDER BY sender_id, timestamp, id"
                )
            )
            sender, events = None, []
            for row_id, sender_id, type_name, data in rows:
                if sender_id != sender:
                    if events:
                        yield from _conversations(shown, sender, events, excluded)
                    sender, events = sender_id, []
                events.append((row_id, type_name, data))
            if events:
                yield from _conversations(shown, sender, events, excluded)
    except SQLAlchemyError as exc:
        raise DataError(shown, f"reading the events failed: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _conversations(url: str, sender: str, events: list, excluded: set[str]) -> Iterator[Conversation]:
    sender_hash = hashlib.sha256(str(sender).encode()).hexdigest()[:12]  # sender ids can be personal (Slack ids)
    messages: list[dict[str, str]] = []
    first_row = None
    part = 0

    def flush() -> Iterator[Conversation]:
        nonlocal messages, part, first_row
        if messages:
            part += 1
            yield Conversation(list(messages), f"tracker:{sender_hash}#{part}", from_tracker=True,
                               meta={"url": url, "first_event_id": first_row})
        messages, first_row = [], None

    for row_id, type_name, data in events:
        if type_name in SESSION_BREAKS:
            yield from flush()
            continue
        try:
            event = json.loads(data) if isinstance(data, str) else (data or {})
        except json.JSONDecodeError as exc:
            raise DataError(f"{url} events.id={row_id}", f"the event's data is not valid JSON ({exc.msg})") from None
        if not isinstance(event, dict):
            raise DataError(f"{url} events.id={row_id}", "the event's data is not a JSON object")
        if is_feedback_event({"event": type_name, **event}):
            continue  # a verdict button's click and its thanks: not part of the conversation
        utter_action = (event.get("metadata") or {}).get("utter_action")
        if type_name == "bot" and utter_action in excluded:
            # Not worth learning: drop the unanswered user turn and start afresh after it.
            while messages and messages[-1]["role"] == "user":
                messages.pop()
            yield from flush()
            continue
        text_value = event.get("text")
        if not isinstance(text_value, str) or not text_value.strip():
            continue  # a bot message with only buttons or an image, or an empty user message
        if first_row is None:
            first_row = row_id
        messages.append({"role": "user" if type_name == "user" else "assistant", "content": text_value})
    yield from flush()
