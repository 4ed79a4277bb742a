"""A visitor's verdict on an LLM reply: the one definition every part uses.

- The action server sends each LLM reply with a ``reply_id`` in the bot message's metadata and two
  buttons (:func:`buttons`) whose payloads are ``/feedback{"verdict":"up","reply_id":"…"}``.
- A click is a user message Rasa parses without the NLU (a ``/intent{...}`` payload): intent
  ``feedback`` with the entities ``verdict`` and ``reply_id``. That user event on the tracker is
  the record, tied to the bot event whose metadata holds the same ``reply_id``.
  ``action_record_feedback`` answers it with ``utter_feedback_thanks``, never with the LLM.
- Rasa counts it in ``rasa_feedback_total{verdict}`` and not as a turn; the LLM's prompt, the
  training data read from the tracker store and the turn counts leave the click and its thanks
  out (:func:`is_feedback_event`).
- ``python -m review feedback`` lists the thumbs-down replies with their context, and
  ``review export-preferences`` turns the designers' better replies into preference pairs.

Standard library only: both runtimes import it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Mapping, Optional

INTENT = "feedback"
VERDICT_ENTITY = "verdict"
REPLY_ID_ENTITY = "reply_id"
REPLY_ID_METADATA = "reply_id"  # key of the LLM reply's bot event metadata
# Also in that metadata: the SKUs of the catalog sources its user message was given (in order), so
# that the review tool can rebuild the prompt the LLM saw (``ridgeline.catalog.with_sources``).
SOURCES_METADATA = "sources"
THANKS_RESPONSE = "utter_feedback_thanks"

HELPFUL = "up"
NOT_HELPFUL = "down"
VERDICTS = (HELPFUL, NOT_HELPFUL)
BUTTON_TITLES = {HELPFUL: "👍 Helpful", NOT_HELPFUL: "👎 Not helpful"}

PAYLOAD_PREFIX = f"/{INTENT}"
_REPLY_ID = re.compile(r"[0-9a-f]{12}")


def new_reply_id() -> str:
    """12 hex characters: a payload stays within Telegram's 64-byte ``callback_data``."""
    return secrets.token_hex(6)


def is_reply_id(value: Any) -> bool:
    return isinstance(value, str) and _REPLY_ID.fullmatch(value) is not None


def payload(verdict: str, reply_id: str) -> str:
    """The text a button sends: ``/feedback{"verdict":"up","reply_id":"0123456789ab"}`` (48 bytes)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if not is_reply_id(reply_id):
        raise ValueError(f"reply_id must be 12 lowercase hex characters, got {reply_id!r}")
    return PAYLOAD_PREFIX + json.dumps({VERDICT_ENTITY: verdict, REPLY_ID_ENTITY: reply_id}, separators=(",", ":"))


def buttons(reply_id: str) -> list[dict[str, str]]:
    """The two quick replies under an LLM reply (webchat), its buttons (Slack), its inline keyboard (Telegram)."""
    return [{"title": BUTTON_TITLES[verdict], "payload": payload(verdict, reply_id)} for verdict in VERDICTS]


def is_feedback_text(text: Optional[str]) -> bool:
    """A message that is a verdict, judged from its text alone (before Rasa parses it: the channel gate)."""
    stripped = (text or "").lstrip()
    return stripped.startswith(PAYLOAD_PREFIX) and stripped[len(PAYLOAD_PREFIX):][:1] in ("{", "")


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "up" or "down"
    reply_id: str


def verdict_of(event: Mapping[str, Any]) -> Optional[Verdict]:
    """The verdict a user event carries (its parse data's intent and entities), or None.

    Takes a tracker event as a dict (``tracker.events``, the ``data`` column of the SQL tracker
    store, the ``/conversations/<id>/tracker`` endpoint). A malformed verdict (an unknown
    ``verdict`` or a ``reply_id`` of the wrong shape) is None too.
    """
    if event.get("event") not in (None, "user"):
        return None
    parse = event.get("parse_data") or {}
    if ((parse.get("intent") or {}).get("name")) != INTENT:
        return None
    values: dict[str, Any] = {}
    for entity in parse.get("entities") or []:
        if isinstance(entity, Mapping):
            values.setdefault(entity.get("entity"), entity.get("value"))
    verdict, reply_id = values.get(VERDICT_ENTITY), values.get(REPLY_ID_ENTITY)
    if verdict not in VERDICTS or not is_reply_id(reply_id):
        return None
    return Verdict(verdict, reply_id)


def reply_id_of(event: Mapping[str, Any]) -> Optional[str]:
    """The ``reply_id`` of an LLM reply's bot event, or None for every other event."""
    if event.get("event") not in (None, "bot"):
        return None
    value = (event.get("metadata") or {}).get(REPLY_ID_METADATA)
    return value if is_reply_id(value) else None


def sources_of(event: Mapping[str, Any]) -> list[str]:
    """The source SKUs an LLM reply's bot event records (empty when it had none)."""
    value = (event.get("metadata") or {}).get(SOURCES_METADATA) or []
    return [sku for sku in value if isinstance(sku, str)] if isinstance(value, list) else []


def is_feedback_event(event: Mapping[str, Any]) -> bool:
    """A click on a verdict button (any user event of intent ``feedback``, or whose text is a
    ``/feedback`` payload) or the thanks for it: not part of the conversation the LLM sees or
    training learns from."""
    kind = event.get("event")
    if kind == "user":
        parse = event.get("parse_data") or {}
        return ((parse.get("intent") or {}).get("name")) == INTENT or is_feedback_text(event.get("text"))
    if kind == "bot":
        return (event.get("metadata") or {}).get("utter_action") == THANKS_RESPONSE
    return False
