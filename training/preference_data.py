"""Preference pairs: a prompt, the reply to prefer (chosen) and the one to avoid (rejected).

Formats (``training.formats.file_kind`` tells a preference file from a conversation file):

- AutoTrain CSV, ``text`` and ``rejected_text`` columns: each a whole conversation (a JSON list of
  messages, or ``### Human:`` / ``### Assistant:`` turns) that ends with the chosen or the rejected
  reply; the prompt is everything up to the last user turn, and must be the same in both;
- AutoTrain DPO CSV, ``prompt``, ``text`` and ``rejected_text`` columns, or ``prompt``, ``chosen``
  and ``rejected`` columns: plain strings (the user's message, the two replies);
- TRL preference JSONL, ``{"prompt": ..., "chosen": ..., "rejected": ...}`` per line: the prompt a
  string or a list of messages ending with a user message, chosen and rejected a string or a list
  of assistant messages (a list that repeats the prompt first is accepted: the prompt is cut off);
  or, without ``prompt`` (TRL's implicit prompt), chosen and rejected whole conversations.

Each pair's ``source`` is ``file:line``; a malformed row is a ``DataError`` there saying what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from training.formats import (
    DataError, OnError, attempt, check_row_width, csv_columns, csv_rows, input_format, json_line,
    messages_from_text, openai_messages,
)

@dataclass
class PreferencePair:
    prompt: list[dict[str, str]]  # messages with role and content; the last is the user's
    chosen: str
    rejected: str
    source: str  # "path:line"


def read_preferences(path: str, on_error: OnError | None = None) -> Iterator[PreferencePair]:
    """The pairs of one .jsonl or .csv preference file; errors as for ``training.formats.read_file``."""
    kind = input_format(Path(path))
    if kind == "csv":
        yield from _read_csv(path, on_error)
    elif kind == "jsonl":
        yield from _read_jsonl(path, on_error)
    else:
        raise DataError(f"{path}:1", "preference pairs are read from .jsonl (TRL) or .csv (AutoTrain) files")


# --- building and checking one pair --------------------------------------------------------------


def make_pair(prompt: list[dict[str, str]], chosen: str, rejected: str, where: str) -> PreferencePair:
    """A checked pair: the prompt ends with a user turn, the replies are not empty and differ."""
    spoken = [message for message in prompt if message["content"].strip()]
    if not any(message["role"] == "user" for message in spoken):
        raise DataError(where, "the prompt has no user message; give the user's question the replies answer")
    if spoken[-1]["role"] != "user":
        raise DataError(where, f"the prompt ends with a {spoken[-1]['role']} turn; it must end with the user "
                               "message that chosen and rejected reply to")
    for name, reply, purpose in (("chosen", chosen, "prefer"), ("rejected", rejected, "avoid")):
        if not reply.strip():
            raise DataError(where, f"the {name} reply is empty; give the reply to {purpose}")
    if _normal(chosen) == _normal(rejected):
        raise DataError(where, "chosen and rejected are the same reply; a pair needs two different replies")
    return PreferencePair(prompt, chosen, rejected, where)


def pair_from_conversations(chosen: list[dict[str, str]], rejected: list[dict[str, str]],
                            where: str) -> PreferencePair:
    """Two whole conversations that differ only after their last user turn (the implicit prompt)."""
    prompt, chosen_replies = _split_at_last_user(chosen, "chosen", where)
    rejected_prompt, rejected_replies = _split_at_last_user(rejected, "rejected", where)
    if _normal_messages(prompt) != _normal_messages(rejected_prompt):
        raise DataError(where, "the chosen and rejected conversations differ before their last user turn; "
                               "only the reply after it may differ")
    return make_pair(prompt, _reply_text(chosen_replies, "chosen", where),
                     _reply_text(rejected_replies, "rejected", where), where)


def _split_at_last_user(messages: list[dict[str, str]], name: str,
                        where: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    users = [index for index, message in enumerate(messages) if message["role"] == "user"]
    if not users:
        raise DataError(where, f"the {name} conversation has no user turn; it must hold the prompt, then the reply")
    return messages[:users[-1] + 1], messages[users[-1] + 1:]


def _reply_text(messages: list[dict[str, str]], name: str, where: str) -> str:
    """The assistant turns after the prompt, joined; anything else there is a ``DataError``."""
    others = [message["role"] for message in messages if message["role"] != "assistant"]
    if others:
        raise DataError(where, f"the {name} reply holds a {others[0]} turn; after the prompt's last user turn, "
                               "only the assistant's reply may follow")
    text = "\n".join(message["content"].strip() for message in messages if message["content"].strip())
    if not text:
        raise DataError(where, f"the {name} conversation ends without an assistant reply after its last user turn")
    return text


def _normal(text: str) -> str:
    return " ".join(text.split())


def _normal_messages(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(message["role"], _normal(message["content"])) for message in messages if message["content"].strip()]


# --- TRL JSONL -----------------------------------------------------------------------------------


def _read_jsonl(path: str, on_error: OnError | None) -> Iterator[PreferencePair]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                where = f"{path}:{number}"
                pair = attempt(lambda: pair_from_record(json_line(line, where), where), on_error)
                if pair:
                    yield pair


def pair_from_record(record: Any, where: str) -> PreferencePair:
    """A TRL preference record: explicit ``prompt``, or chosen and rejected whole conversations."""
    if not isinstance(record, dict):
        raise DataError(where, f"expected a JSON object with 'chosen' and 'rejected', got {type(record).__name__}")
    missing = [key for key in ("chosen", "rejected") if key not in record]
    if missing:
        raise DataError(where, f"the record lacks {' and '.join(map(repr, missing))}; a preference pair needs "
                               f"'chosen' and 'rejected' (and 'prompt', unless both are whole conversations)")
    if record.get("prompt") is None:
        if not (isinstance(record["chosen"], list) and isinstance(record["rejected"], list)):
            raise DataError(where, "without a 'prompt', 'chosen' and 'rejected' must be whole conversations (lists "
                                   "of messages); add the 'prompt' the replies answer")
        return pair_from_conversations(openai_messages(record["chosen"], where, "chosen"),
                                       openai_messages(record["rejected"], where, "rejected"), where)
    prompt = _prompt_messages(record["prompt"], where)
    return make_pair(prompt, _reply(record["chosen"], prompt, "chosen", where),
                     _reply(record["rejected"], prompt, "rejected", where), where)


def _prompt_messages(prompt: Any, where: str) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return openai_messages(prompt, where, "prompt")
    raise DataError(where, f"'prompt' is a {type(prompt).__name__}; make it a string or a list of messages")


def _reply(value: Any, prompt: list[dict[str, str]], name: str, where: str) -> str:
    """A reply given as a string, as assistant messages, or as the whole conversation starting with the prompt."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise DataError(where, f"'{name}' is a {type(value).__name__}; make it a string or a list of messages")
    messages = openai_messages(value, where, name)
    if any(message["role"] != "assistant" for message in messages):
        if _normal_messages(messages[:len(prompt)]) != _normal_messages(prompt):
            raise DataError(where, f"'{name}' holds a turn that is not the assistant's and does not start with the "
                                   f"prompt; with a 'prompt', '{name}' holds only the assistant's reply")
        messages = messages[len(prompt):]
    return _reply_text(messages, name, where)


# --- AutoTrain CSV -------------------------------------------------------------------------------


def _read_csv(path: str, on_error: OnError | None) -> Iterator[PreferencePair]:
    columns = csv_columns(path)
    layout = _csv_layout(columns, path)
    for where, row in csv_rows(path):
        pair = attempt(lambda: _csv_pair(row, layout, columns, where), on_error)
        if pair:
            yield pair


_CSV_LAYOUTS = {  # layout -> (chosen column, rejected column); "conversations": whole conversations
    "prompt, chosen, rejected": ("chosen", "rejected"),
    "prompt, text, rejected_text": ("text", "rejected_text"),
    "conversations": ("text", "rejected_text"),
}


def _csv_layout(columns: dict[str, str], path: str) -> str:
    """Which columns hold the pair (a key of ``_CSV_LAYOUTS``), by the header."""
    if {"prompt", "chosen", "rejected"} <= set(columns):
        return "prompt, chosen, rejected"
    if {"text", "rejected_text"} <= set(columns):
        return "prompt, text, rejected_text" if "prompt" in columns else "conversations"
    found = ", ".join(columns) or "none"
    raise DataError(f"{path}:1", "a preference CSV needs 'text' and 'rejected_text' columns (AutoTrain; with a "
                                 "'prompt' column they hold just the replies), or 'prompt', 'chosen' and 'rejected' "
                                 f"columns; found: {found}")


def _csv_pair(row: dict, layout: str, columns: dict[str, str], where: str) -> PreferencePair:
    check_row_width(row, where)
    chosen_column, rejected_column = _CSV_LAYOUTS[layout]
    chosen, rejected = row[columns[chosen_column]] or "", row[columns[rejected_column]] or ""
    if layout == "conversations":
        return pair_from_conversations(messages_from_text(chosen, where, chosen_column),
                                       messages_from_text(rejected, where, rejected_column), where)
    prompt = row[columns["prompt"]] or ""
    if not prompt.strip():
        raise DataError(where, "the prompt is empty; give the user message the replies answer")
    return make_pair([{"role": "user", "content": prompt}], chosen, rejected, where)
