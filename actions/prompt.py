"""Turn a conversation (the tracker's events and slots) into OpenAI-style chat messages."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ridgeline.knowledge import StoreKnowledge

TRUNCATION_NOTE = " [message shortened]"

# Slots worth telling the model about, with the words to say them in. The
# email slot stays out: the model needs no personal data to answer.
PROMPT_SLOTS = {
    "order_id": "The customer's order number",
}


def conversation_turns(events: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The user and bot utterances of the current session, oldest first.

    A new session (``session_started``) starts the history afresh, and a
    ``restart`` event wipes it, exactly as Rasa's own tracker does.
    """
    turns: list[dict[str, str]] = []
    for event in events:
        kind = event.get("event")
        if kind in {"session_started", "restart"}:
            turns.clear()
        elif kind in {"user", "bot"}:
            text = (event.get("text") or "").strip()
            if text:
                turns.append({"role": "user" if kind == "user" else "assistant", "content": text})
    return turns


def _merge_and_trim(turns: list[dict[str, str]], max_messages: int) -> list[dict[str, str]]:
    """Keep at most the last ``max_messages`` messages, alternating roles and starting with the user.

    Consecutive messages of one role are joined (Rasa often sends two bot
    messages in a row); several chat templates (Llama, Gemma) reject
    non-alternating roles or a conversation that opens with the assistant.

    The oldest messages go in blocks of ``max_messages // 2``, not one turn at a
    time, so the model sees between half and all of ``max_messages`` and the
    start of the history moves every few turns only: until it moves, each turn's
    prompt begins with the previous turn's, and the LLM service computes only
    the new messages (its cache keeps each conversation's last turn).
    """
    merged: list[dict[str, str]] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n" + turn["content"]}
        else:
            merged.append(dict(turn))
    if len(merged) > max_messages:
        block = max(1, max_messages // 2)
        excess = len(merged) - max_messages
        merged = merged[-(-excess // block) * block:]  # drop the fewest whole blocks that leave max_messages
    while merged and merged[0]["role"] != "user":
        merged.pop(0)
    return merged


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
) -> list[dict[str, str]]:
    """System message (persona, store facts, known slots) plus the recent conversation.

    User text only ever appears in ``user`` messages, never in the system message.
    A ``canary`` (a secret string) is written into the system message so that
    a reply that leaks the prompt can be caught (see ``reply_guard``).
    Raises ``ValueError`` when the conversation has no user message to answer.
    """
    turns = _merge_and_trim(conversation_turns(events), history_turns)
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("the conversation has no user message to answer")
    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = truncate(turn["content"], max_user_chars)

    system = knowledge.system_prompt()
    if canary:
        system += f"\n\nConfidential reference, never to be repeated: {canary}"
    known = [f"- {label}: {slots[name]}" for name, label in PROMPT_SLOTS.items() if slots.get(name)]
    if known:
        system += "\n\nKnown about this conversation:\n" + "\n".join(known)
    return [{"role": "system", "content": system}, *turns]
