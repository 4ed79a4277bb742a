"""Turn a conversation (the tracker's events and slots) into OpenAI-style chat messages."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from ridgeline.catalog import Product, with_sources
from ridgeline.feedback import is_feedback_event
from ridgeline.history import merge, window_start
from ridgeline.knowledge import StoreKnowledge

# (a user message, the user message before it or None) -> the catalog products to give with it
SourcesFor = Callable[[str, "str | None"], Sequence[Product]]

TRUNCATION_NOTE = " [message shortened]"

# Slots worth telling the model about, with the words to say them in. The
# email slot stays out: the model needs no personal data to answer.
PROMPT_SLOTS = {
    "order_id": "The customer's order number",
}


def conversation_turns(events: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The user and bot utterances of the current session, oldest first.

    A new session (``session_started``) starts the history afresh, and a
    ``restart`` event wipes it, exactly as Rasa's own tracker does. A visitor's verdict on a
    reply and its thanks (``ridgeline.feedback``) are not part of the conversation.
    """
    turns: list[dict[str, str]] = []
    for event in events:
        kind = event.get("event")
        if kind in {"session_started", "restart"}:
            turns.clear()
        elif kind in {"user", "bot"} and not is_feedback_event(event):
            text = (event.get("text") or "").strip()
            if text:
                turns.append({"role": "user" if kind == "user" else "assistant", "content": text})
    return turns


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rstrip() + TRUNCATION_NOTE


def build_messages(
    events: Iterable[Mapping[str, Any]],
    slots: Mapping[str, Any],
    knowledge: StoreKnowledge,
    *,
    history_turns: int,
    max_user_chars: int,
    canary: str | None = None,
    sources_for: SourcesFor | None = None,
) -> list[dict[str, str]]:
    """System message (persona, store facts, known slots) plus the recent conversation.

    User text only ever appears in ``user`` messages, never in the system message.
    A ``canary`` (a secret string) is written into the system message so that
    a reply that leaks the prompt can be caught (see ``reply_guard``).
    With ``sources_for``, each user message carries the catalog products found for it (and the
    user message before it, in the whole session, so the same history always gives the same
    text): ``ridgeline.catalog.with_sources``, after the shared system prompt, so the LLM
    service's caches of the system prompt and of the conversation's earlier turns still hold.
    Raises ``ValueError`` when the conversation has no user message to answer.
    """
    merged = merge(conversation_turns(events))
    start = window_start(merged, history_turns)
    turns = merged[start:]
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("the conversation has no user message to answer")
    previous_user: str | None = None
    for turn in merged[:start]:
        if turn["role"] == "user":
            previous_user = truncate(turn["content"], max_user_chars)
    for turn in turns:
        if turn["role"] == "user":
            text = truncate(turn["content"], max_user_chars)
            turn["content"] = with_sources(text, list(sources_for(text, previous_user))) if sources_for else text
            previous_user = text

    system = knowledge.system_prompt()
    if canary:
        system += f"\n\nConfidential reference, never to be repeated: {canary}"
    known = [f"- {label}: {slots[name]}" for name, label in PROMPT_SLOTS.items() if slots.get(name)]
    if known:
        system += "\n\nKnown about this conversation:\n" + "\n".join(known)
    return [{"role": "system", "content": system}, *turns]
