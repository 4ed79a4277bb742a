"""Visitors' verdicts on the LLM's replies, read from a conversation's tracker events.

``ridgeline.feedback`` is the contract: an LLM reply is a bot event whose metadata holds a
``reply_id`` (and the SKUs of the catalog sources its question was given); a verdict is a later
user event, a click on one of the reply's two buttons, naming that ``reply_id``. When a visitor
clicks twice on one reply the later click counts: it is what they thought last.

A reply's context is what the LLM was given before it: the utterances of its session
(``session_started`` and ``restart`` start afresh, as in the action server's prompt), without the
clicks and their thanks (``is_feedback_event``), which the LLM never sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from review import files
from review.store import Event
from ridgeline.feedback import is_feedback_event, reply_id_of, sources_of, verdict_of
from ridgeline.history import HISTORY_TURNS, merge, window_start

# Events after which the action server's prompt starts afresh (actions/prompt.py).
RESETS = ("session_started", "restart")
# The event types a reply's context and verdict are read from.
VERDICT_EVENT_TYPES = ("user", "bot", *RESETS)
# The action server's default ACTIONS_LLM_HISTORY_TURNS: the messages the LLM gets, the question included.
DEFAULT_CONTEXT_MESSAGES = HISTORY_TURNS
USER, ASSISTANT = "user", "assistant"


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant", as the chat messages say it
    text: str


@dataclass(frozen=True)
class JudgedReply:
    """One LLM reply a visitor judged, with the verdict that counts."""
    sender: str
    reply_id: str
    verdict: str                 # ridgeline.feedback.HELPFUL or NOT_HELPFUL
    text: str                    # the model's reply
    sources: tuple[str, ...]     # SKUs given with the question, in prompt order
    turns: tuple[Turn, ...]      # the session's utterances before the reply, oldest first
    question: Event | None       # the user event the reply answered
    replied_at: float
    judged_at: float             # the counting click's time
    click_id: int                # the counting click's event id

    @property
    def item_id(self) -> str:
        """Stable across runs and masking, and no sender id: the conversation's key and the reply's id."""
        return f"{files.key(self.sender)}:{self.reply_id}"


@dataclass(frozen=True)
class _Reply:
    event: Event
    turns: tuple[Turn, ...]
    question: Event | None


def judged_replies(sender: str, events: Iterable[Event]) -> list[JudgedReply]:
    """Every LLM reply of the conversation that the visitor judged, in the order of the replies.

    A click naming a reply this conversation does not hold (or not yet) judges nothing.
    """
    replies: dict[str, _Reply] = {}
    last: dict[str, tuple[str, Event]] = {}  # reply_id -> (verdict, click)
    turns: list[Turn] = []
    question: Event | None = None
    for event in events:
        if event.type in RESETS:
            turns, question = [], None
        elif event.type in (USER, "bot") and is_feedback_event(event.data):
            verdict = verdict_of(event.data)
            if verdict is not None and verdict.reply_id in replies:
                last[verdict.reply_id] = (verdict.verdict, event)
        elif event.type in (USER, "bot"):
            reply_id = reply_id_of(event.data) if event.type == "bot" else None
            if reply_id is not None:
                replies.setdefault(reply_id, _Reply(event, tuple(turns), question))
            text = (event.data.get("text") or "").strip()
            if text:
                turns.append(Turn(USER if event.type == USER else ASSISTANT, text))
            if event.type == USER:
                question = event
    judged = [_judged(sender, reply_id, replies[reply_id], verdict, click)
              for reply_id, (verdict, click) in last.items()]
    return sorted(judged, key=lambda j: (j.replied_at, j.reply_id))


def _judged(sender: str, reply_id: str, reply: _Reply, verdict: str, click: Event) -> JudgedReply:
    return JudgedReply(
        sender=sender, reply_id=reply_id, verdict=verdict, text=(reply.event.data.get("text") or "").strip(),
        sources=tuple(sources_of(reply.event.data)), turns=reply.turns, question=reply.question,
        replied_at=reply.event.timestamp, judged_at=click.timestamp, click_id=click.id,
    )


def context(turns: Iterable[Turn], max_messages: int = DEFAULT_CONTEXT_MESSAGES) -> list[Turn]:
    """The messages the LLM got before its reply, ending with the visitor's question.

    By the action server's own rule (``ridgeline.history``): consecutive messages of one role
    joined, at most ``max_messages`` of the latest (dropped in blocks), starting with the visitor.
    A bot message between the question and the reply (a "message shortened" notice) came after
    the LLM was asked, so it is left out. Empty when there is no question.
    """
    if max_messages <= 0:
        return []
    merged = merge([{"role": turn.role, "content": turn.text} for turn in turns])
    while merged and merged[-1]["role"] != USER:
        merged.pop()
    return [Turn(m["role"], m["content"]) for m in merged[window_start(merged, max_messages):]]
