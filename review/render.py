"""Conversations as text and JSON: the ``list`` lines, the ``show`` transcript and the ``feedback``
listing (masked by the caller's Masker)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from review.conversation import Conversation, Finding, bot_response, full_intent
from review.privacy import Masker
from review.verdicts import JudgedReply, context
from ridgeline.feedback import HELPFUL, NOT_HELPFUL, reply_id_of, verdict_of

VERDICT_SIGNS = {HELPFUL: "👍", NOT_HELPFUL: "👎"}
# Events a transcript leaves out: Rasa's bookkeeping, not the conversation.
HIDDEN_EVENTS = {"user_featurization"}
HIDDEN_ACTIONS = {"action_listen"}


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """One line of a transcript."""
    timestamp: float
    kind: str  # session | user | verdict | bot | action | slot | loop | event
    text: str
    note: str = ""


def entities_note(entities, mask: Masker) -> str:
    parts = []
    for entity in entities:
        value = mask.value(entity.get("value"))
        parts.append(f"{entity.get('entity')}={value if isinstance(value, str) else json.dumps(value)}")
    return ", ".join(parts)


def transcript(conversation: Conversation, mask: Masker) -> list[Entry]:
    entries = []
    for event in conversation.events:
        data, kind = event.data, event.type
        if kind in HIDDEN_EVENTS:
            continue
        if kind == "session_started":
            entries.append(Entry(event.timestamp, "session", "session started"))
        elif kind == "user" and (verdict := verdict_of(data)) is not None:  # a click: no message, a verdict
            entries.append(Entry(event.timestamp, "verdict", f"{VERDICT_SIGNS[verdict.verdict]} {verdict.verdict} "
                                                             f"on LLM reply {verdict.reply_id}"))
        elif kind == "user":
            parse = data.get("parse_data") or {}
            intent = parse.get("intent") or {}
            confidence = intent.get("confidence")
            note = f"intent {full_intent(parse) or '(none)'}"
            if confidence is not None:
                note += f" {float(confidence):.2f}"
            entities = entities_note(parse.get("entities") or [], mask)
            if entities:
                note += f"; entities {entities}"
            if data.get("input_channel"):
                note += f"; via {data['input_channel']}"
            entries.append(Entry(event.timestamp, "user", mask(data.get("text") or ""), note))
        elif kind == "bot":
            reply_id = reply_id_of(data)
            note = bot_response(event) or (f"LLM reply {reply_id}" if reply_id else "")
            entries.append(Entry(event.timestamp, "bot", mask(data.get("text") or ""), note))
        elif kind == "action":
            name = data.get("name") or ""
            if name in HIDDEN_ACTIONS:
                continue
            policy = data.get("policy") or ""
            confidence = data.get("confidence")
            note = f"{policy} {float(confidence):.2f}".strip() if confidence is not None else policy
            entries.append(Entry(event.timestamp, "action", name, note))
        elif kind == "slot":
            value = mask.value(data.get("value"))
            entries.append(Entry(event.timestamp, "slot", f"{data.get('name')} = {json.dumps(value, ensure_ascii=False)}"))
        elif kind == "active_loop":
            entries.append(Entry(event.timestamp, "loop", f"form {data.get('name')}" if data.get("name")
                                 else "form finished"))
        else:
            entries.append(Entry(event.timestamp, "event", kind))
    return entries


def reasons_summary(found: list[Finding]) -> str:
    counts = Counter(f.reason.value for f in found)
    return ", ".join(f"{reason}×{n}" if n > 1 else reason for reason, n in counts.items())


def list_line(conversation: Conversation, found: list[Finding], mask: Masker) -> str:
    users = len(conversation.user_messages())
    channels = ",".join(conversation.channels) or "-"
    return mask(f"{when(conversation.last)}  {conversation.sender}  {users} message{'s' * (users != 1)}  "
                f"{channels}  {reasons_summary(found)}")


def list_record(conversation: Conversation, found: list[Finding], mask: Masker) -> dict[str, Any]:
    return {
        "sender": mask(conversation.sender),
        "first": when(conversation.first),
        "last": when(conversation.last),
        "user_messages": len(conversation.user_messages()),
        "channels": conversation.channels,
        "reasons": [{"reason": f.reason.value, "at": when(f.timestamp), "detail": mask(f.detail)} for f in found],
    }


def show_text(conversation: Conversation, found: list[Finding], mask: Masker) -> str:
    lines = [mask(f"conversation {conversation.sender}: {when(conversation.first)} to {when(conversation.last)}, "
                  f"channels {', '.join(conversation.channels) or '-'}")]
    if found:
        lines.append("needs attention: " + mask(reasons_summary(found)))
        lines.extend(mask(f"  {when(f.timestamp)}  {f.reason.value}: {f.detail}") for f in found)
    lines.append("")
    width = max((len(e.kind) for e in transcript(conversation, mask)), default=6)
    for entry in transcript(conversation, mask):
        text = f'"{entry.text}"' if entry.kind in ("user", "bot") else entry.text
        note = f"   ({entry.note})" if entry.note else ""
        lines.append(f"{when(entry.timestamp)}  {entry.kind:<{width}}  {text}{note}")
    return "\n".join(lines)


def show_record(conversation: Conversation, found: list[Finding], mask: Masker) -> dict[str, Any]:
    return {
        **list_record(conversation, found, mask),
        "transcript": [{"at": when(e.timestamp), "kind": e.kind, "text": e.text, "note": e.note}
                       for e in transcript(conversation, mask)],
    }


# ---------------------------------------------------------------- feedback


def _block(label: str, text: str, width: int) -> list[str]:
    """``label  text``, a multi-line text's further lines indented under its first."""
    first, *rest = text.splitlines() or [""]
    return [f"  {label:<{width}}  {first}", *(f"  {'':<{width}}  {line}" for line in rest)]


def verdict_text(judged: JudgedReply, mask: Masker, max_messages: int) -> str:
    """One judged reply: who and when, then its context ending with the question, then the reply."""
    head = (f"{when(judged.judged_at)}  {mask(judged.sender)}  {VERDICT_SIGNS[judged.verdict]} {judged.verdict}  "
            f"LLM reply {judged.reply_id}")
    if judged.sources:
        head += f"  sources {', '.join(judged.sources)}"
    lines = [head]
    for turn in context(judged.turns, max_messages):
        lines += _block(turn.role, mask(turn.text), 9)
    lines += _block("reply", mask(judged.text), 9)
    return "\n".join(lines)


def verdict_record(judged: JudgedReply, mask: Masker, max_messages: int) -> dict[str, Any]:
    return {
        "id": judged.item_id,
        "sender": mask(judged.sender),
        "verdict": judged.verdict,
        "judged": when(judged.judged_at),
        "reply_id": judged.reply_id,
        "sources": list(judged.sources),
        "context": [{"role": t.role, "content": mask(t.text)} for t in context(judged.turns, max_messages)],
        "reply": mask(judged.text),
    }
