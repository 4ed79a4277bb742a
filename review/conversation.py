"""A conversation read from its tracker events, and why a designer should look at it.

The reasons, each read from the events Rasa stores (rasa_project/domain/*.yml names the responses):

- ``nlu_fallback``: the FallbackClassifier was not sure of any intent;
- ``low_confidence``: the predicted intent's confidence is below ``--min-confidence``;
- ``apology``: the bot said ``utter_llm_unavailable`` (the LLM was down or slow, answered garbage,
  or the action server withheld its reply: the tracker cannot tell which; the action server's log
  line ``withheld an LLM reply for <sender>`` does) or ``utter_no_reply``; or a user message got no
  reply at all in the tracker: the channel's gate then answered ``utter_no_reply`` itself, which
  Rasa does not record;
- ``handoff``: ``action_human_handoff`` ran, or the ``handoff_requested`` slot became true;
- ``repeated``: two user messages in a row with the same normalised text, or 90 % alike;
- ``thumbs_down``: the visitor judged an LLM reply not helpful (its 👎 button; when they clicked
  twice, the later click counts: review/verdicts.py).

A click on a verdict button and its thanks (``ridgeline.feedback.is_feedback_event``) are not
turns of the conversation: they are no user message, reply, repeat or unanswered message here.

Rate-limited messages are not here: the gate turns them away before Rasa sees them, so they
never reach the tracker.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from review.store import Event
from review.verdicts import judged_replies
from ridgeline.feedback import NOT_HELPFUL, is_feedback_event

APOLOGY_RESPONSES = ("utter_llm_unavailable", "utter_no_reply")
HANDOFF_ACTION = "action_human_handoff"
HANDOFF_SLOT = "handoff_requested"
FALLBACK_INTENT = "nlu_fallback"
REPEAT_SIMILARITY = 0.9
# What `list` needs of a conversation; `show` and the exports read every event.
REVIEW_EVENT_TYPES = ("user", "bot", "action", "slot")


class Reason(str, Enum):
    NLU_FALLBACK = "nlu_fallback"
    LOW_CONFIDENCE = "low_confidence"
    APOLOGY = "apology"
    HANDOFF = "handoff"
    REPEATED = "repeated"
    THUMBS_DOWN = "thumbs_down"


@dataclass(frozen=True)
class UserMessage:
    text: str
    intent: str | None
    confidence: float | None
    entities: tuple[dict[str, Any], ...]
    channel: str | None
    timestamp: float
    best_guess: tuple[str, float] | None  # the best real intent when NLU said nlu_fallback

    @property
    def predicted(self) -> str:
        return self.intent or "(none)"


@dataclass(frozen=True)
class Finding:
    reason: Reason
    timestamp: float
    detail: str
    message: UserMessage | None = None  # the user message it is about, when there is one


@dataclass
class Conversation:
    sender: str
    events: list[Event] = field(default_factory=list)

    @property
    def first(self) -> float:
        return self.events[0].timestamp if self.events else 0.0

    @property
    def last(self) -> float:
        return max((e.timestamp for e in self.events), default=0.0)

    def user_messages(self) -> list[UserMessage]:
        return [user_message(e) for e in self.events if e.type == "user" and not is_feedback_event(e.data)]

    @property
    def channels(self) -> list[str]:
        return sorted({m.channel for m in self.user_messages() if m.channel})


def full_intent(parse_data: dict[str, Any]) -> str | None:
    """The intent, with its retrieval sub-intent when a ResponseSelector chose one (``faq/returns``)."""
    name = (parse_data.get("intent") or {}).get("name")
    selected = ((parse_data.get("response_selector") or {}).get(name or "") or {}).get("response") or {}
    return selected.get("intent_response_key") or name


def user_message(event: Event) -> UserMessage:
    data = event.data
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    best_guess = None
    if intent.get("name") == FALLBACK_INTENT:
        ranked = [r for r in parse.get("intent_ranking") or [] if r.get("name") not in (None, FALLBACK_INTENT)]
        if ranked:
            best_guess = (ranked[0]["name"], float(ranked[0].get("confidence") or 0.0))
    confidence = intent.get("confidence")
    return UserMessage(
        text=data.get("text") or "",
        intent=full_intent(parse),
        confidence=float(confidence) if confidence is not None else None,
        entities=tuple(e for e in parse.get("entities") or [] if isinstance(e, dict)),
        channel=data.get("input_channel"),
        timestamp=event.timestamp,
        best_guess=best_guess,
    )


def normalised(text: str) -> str:
    """Case, accents, punctuation and spacing left out: "Where's my ORDER?!" ~ "wheres my order"."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", "", text).split())


def repeats(previous: str, text: str) -> bool:
    a, b = normalised(previous), normalised(text)
    if not a or not b:
        return False
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= REPEAT_SIMILARITY


def bot_response(event: Event) -> str | None:
    """The domain response a bot event came from (Rasa writes it as ``metadata.utter_action``)."""
    return (event.data.get("metadata") or {}).get("utter_action")


def short(text: str, limit: int = 100) -> str:
    """``text`` on one line, cut to ``limit`` characters: a finding's detail, not the whole reply."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def findings(conversation: Conversation, min_confidence: float) -> list[Finding]:
    """Every reason to look at ``conversation``, in the order they happened."""
    found: list[Finding] = []
    previous: UserMessage | None = None
    waiting: UserMessage | None = None  # a user message the bot has not answered yet
    handoff_seen = False
    # the click that counts for each reply judged 👎 -> that reply
    thumbs_down = {j.click_id: j for j in judged_replies(conversation.sender, conversation.events)
                   if j.verdict == NOT_HELPFUL}

    def unanswered(message: UserMessage) -> None:
        found.append(Finding(Reason.APOLOGY, message.timestamp,
                             "no reply in the tracker: the channel answered utter_no_reply", message))

    for event in conversation.events:
        if event.type in ("user", "bot") and is_feedback_event(event.data):
            judged = thumbs_down.get(event.id)
            if judged is not None:
                found.append(Finding(Reason.THUMBS_DOWN, event.timestamp, f"👎 on an LLM reply: {short(judged.text)}",
                                     user_message(judged.question) if judged.question else None))
        elif event.type == "user":
            if waiting is not None:
                unanswered(waiting)
            message = user_message(event)
            if message.intent == FALLBACK_INTENT:
                found.append(Finding(Reason.NLU_FALLBACK, event.timestamp, f"nlu_fallback: {message.text}", message))
            elif message.confidence is not None and message.confidence < min_confidence:
                found.append(Finding(Reason.LOW_CONFIDENCE, event.timestamp,
                                     f"{message.predicted} {message.confidence:.2f}: {message.text}", message))
            if previous is not None and repeats(previous.text, message.text):
                found.append(Finding(Reason.REPEATED, event.timestamp, f"said again: {message.text}", message))
            previous = waiting = message
        elif event.type == "bot":
            response = bot_response(event)
            if response in APOLOGY_RESPONSES:
                why = ("the LLM was unavailable or its reply was withheld (the action server's log says which)"
                       if response == "utter_llm_unavailable" else "part of the system did not answer")
                found.append(Finding(Reason.APOLOGY, event.timestamp, f"{response}: {why}", waiting))
            waiting = None
        elif event.type == "action" and event.data.get("name") == HANDOFF_ACTION and not handoff_seen:
            handoff_seen = True
            found.append(Finding(Reason.HANDOFF, event.timestamp, f"{HANDOFF_ACTION} ran", waiting or previous))
        elif (event.type == "slot" and event.data.get("name") == HANDOFF_SLOT and event.data.get("value") is True
              and not handoff_seen):
            handoff_seen = True
            found.append(Finding(Reason.HANDOFF, event.timestamp, f"{HANDOFF_SLOT} set", waiting or previous))
    if waiting is not None:
        unanswered(waiting)
    return found
