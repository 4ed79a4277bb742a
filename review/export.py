"""Conversations as Rasa training data: NLU examples to correct, and test stories.

Both are YAML Rasa 3.6 reads as it reads rasa_project/data and rasa_project/tests: entities are
annotated (``[RG-00000](order_id)``, ``[bags]{"entity": ..., "value": ...}`` for a synonym) as the
extractors found them, and personal data is a stand-in of the same shape (review/privacy.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import yaml

from review import files
from review.conversation import FALLBACK_INTENT, Conversation, Finding, UserMessage, full_intent
from review.privacy import Masker

# Events a test story has no step for (Rasa's bookkeeping, bot texts, what the runner does itself).
STORY_SKIPPED_ACTIONS = {"action_listen", "action_session_start", "action_extract_slots"}


def one_line(text: str) -> str:
    return " ".join(text.split())


def annotated(text: str, entities: Sequence[dict[str, Any]], mask: Masker) -> str:
    """``text`` with each entity that has a position written as Rasa's training-data annotation."""
    spans, taken = [], -1
    for entity in sorted((e for e in entities if isinstance(e.get("start"), int) and isinstance(e.get("end"), int)),
                         key=lambda e: (e["start"], -e["end"])):
        if entity["start"] >= taken and 0 <= entity["start"] < entity["end"] <= len(text):
            spans.append(entity)
            taken = entity["end"]
    out, at = [], 0
    for entity in spans:
        out.append(mask.export(text[at:entity["start"]]).replace("[", "(").replace("]", ")"))
        shown = mask.export(text[entity["start"]:entity["end"]])
        value = mask.export(entity.get("value"))
        if value == shown or not isinstance(value, (str, int, float)):
            out.append(f"[{shown}]({entity['entity']})")
        else:
            out.append(f"[{shown}]" + json.dumps({"entity": entity["entity"], "value": value}, ensure_ascii=False))
        at = entity["end"]
    out.append(mask.export(text[at:]).replace("[", "(").replace("]", ")"))
    return one_line("".join(out))


# ---------------------------------------------------------------- NLU


def target_intent(message: UserMessage) -> str:
    """The intent to file the example under: the prediction, or for nlu_fallback its best real guess."""
    if message.intent == FALLBACK_INTENT and message.best_guess:
        return message.best_guess[0]
    return message.predicted


def prediction_comment(message: UserMessage) -> str:
    confidence = f"{message.confidence:.2f}" if message.confidence is not None else "?"
    comment = f"# predicted: {message.predicted} ({confidence})"
    if message.intent == FALLBACK_INTENT and message.best_guess:
        comment += f"; best guess {message.best_guess[0]} ({message.best_guess[1]:.2f})"
    return comment


def nlu_snippet(chosen: Sequence[tuple[Conversation, UserMessage]], mask: Masker) -> str:
    """``nlu:`` items grouped by predicted intent, one example per item (so each can be moved to its
    right intent alone), each under a ``# predicted: intent (confidence)`` comment.

    A comment inside an ``examples: |`` block would be training text to Rasa, so it stands above
    the item, where YAML keeps it a comment.
    """
    lines = ["# Examples from reviewed conversations (python -m review export-nlu). Correct each `intent:`",
             "# to the one the visitor meant, then paste the items into rasa_project/data/nlu/ and `make train`.",
             "version: \"3.1\"", "nlu:"]
    seen = set()
    for conversation, message in sorted(chosen, key=lambda pair: (target_intent(pair[1]), pair[1].timestamp)):
        example = annotated(message.text, message.entities, mask)
        if not example or (target_intent(message), example) in seen:
            continue
        seen.add((target_intent(message), example))
        lines += [files.begin("yaml", conversation.sender),
                  prediction_comment(message),
                  f"- intent: {target_intent(message)}",
                  "  examples: |",
                  f"    - {example}",
                  files.end("yaml", conversation.sender)]
    if len(lines) == 4:
        lines[-1] = "nlu: []"
    return "\n".join(lines) + "\n"


def chosen_messages(conversation: Conversation, found: Sequence[Finding], reasons: set[str]) -> list[UserMessage]:
    """The user messages the findings of ``reasons`` are about, each once."""
    picked: dict[float, UserMessage] = {}
    for finding in found:
        if finding.reason.value in reasons and finding.message is not None:
            picked.setdefault(finding.message.timestamp, finding.message)
    return [picked[t] for t in sorted(picked)]


# ---------------------------------------------------------------- test stories


class _Literal(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                                                                 style="|"))


def story_steps(conversation: Conversation, mask: Masker) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for event in conversation.events:
        data = event.data
        if event.type == "user":
            parse = data.get("parse_data") or {}
            text = annotated(data.get("text") or "", parse.get("entities") or [], mask)
            step: dict[str, Any] = {"user": _Literal(text + "\n")}
            intent = full_intent(parse)
            if intent:
                step["intent"] = intent
            steps.append(step)
        elif event.type == "action" and data.get("name") and data["name"] not in STORY_SKIPPED_ACTIONS:
            steps.append({"action": data["name"]})
        elif event.type == "slot" and data.get("name"):
            steps.append({"slot_was_set": [{data["name"]: mask.export(data.get("value"))}]})
        elif event.type == "active_loop":
            steps.append({"active_loop": data.get("name")})
    return steps


def test_story(conversation: Conversation, mask: Masker) -> str:
    """The conversation as one story of a Rasa test file (rasa_project/tests/ format)."""
    day = datetime.fromtimestamp(conversation.first, timezone.utc).strftime("%Y-%m-%d")
    name = f"reviewed conversation {files.key(conversation.sender)} of {day}"
    body = yaml.dump({"version": "3.1", "stories": [{"story": name, "steps": story_steps(conversation, mask)}]},
                     Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    header = ("# A reviewed conversation as a test story (python -m review export-story). Check each intent and\n"
              "# action is what should happen, then add it to rasa_project/tests/test_stories.yml (`make test-stories`).\n")
    return header + body
