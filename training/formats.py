"""Readers, one per input format, that turn each conversation into chat messages.

Every reader yields ``Conversation``s whose ``source`` names the file and line
(or tracker-store row) it came from, and raises ``DataError`` naming that
place when a record is malformed. Formats:

- OpenAI chat JSONL: ``{"messages": [{"role": "user", "content": "..."}, ...]}`` per line;
- ShareGPT, JSON (a list) or JSONL: ``{"conversations": [{"from": "human", "value": "..."}, ...]}``;
- CSV in the AutoTrain LLM formats: a ``text`` column (a JSON list of messages, or
  ``### Human: ... ### Assistant: ...`` turns), or ``prompt`` and ``response`` columns;
- a Rasa tracker store, given as an SQLAlchemy URL: see ``training.tracker``.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

logger = logging.getLogger(__name__)

FILE_SUFFIXES = (".jsonl", ".json", ".csv")
_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_SHAREGPT_ROLES = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
    "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
}
_TEXT_MARKER = re.compile(
    r"^[ \t]*###[ \t]*(Human|User|Instruction|Assistant|Response|System)[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE
)
_MARKER_ROLES = {"human": "user", "user": "user", "instruction": "user", "assistant": "assistant",
                 "response": "assistant", "system": "system"}


class DataError(ValueError):
    """A malformed input file or row; ``str()`` is ``where: what is wrong``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class Conversation:
    messages: list[dict[str, str]]
    source: str  # "path:line" or "tracker:<conversation hash>"
    from_tracker: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def is_sql_url(spec: str) -> bool:
    return "://" in spec and not Path(spec).exists()


def input_format(path: Path) -> str:
    return {".jsonl": "jsonl", ".json": "json", ".csv": "csv"}.get(path.suffix.lower(), "unknown")


def expand_inputs(specs: list[str]) -> list[str]:
    """Folders become their supported files (sorted, recursively); files and SQL URLs stay as they are."""
    expanded: list[str] = []
    for spec in specs:
        if is_sql_url(spec):
            expanded.append(spec)
            continue
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
            if not files:
                raise DataError(spec, f"the folder holds no {', '.join(FILE_SUFFIXES)} files")
            expanded.extend(str(p) for p in files)
        elif path.is_file():
            if input_format(path) == "unknown":
                raise DataError(spec, "unsupported file type; use .jsonl or .json (OpenAI or ShareGPT chats), "
                                      ".csv (text, or prompt + response columns) or an SQL URL of a tracker store")
            expanded.append(spec)
        else:
            raise DataError(spec, "no such file or folder (an SQL URL looks like sqlite:///rasa.db)")
    return expanded


OnError = Callable[[DataError], None]


def read_file(path: str, on_error: OnError | None = None) -> Iterator[Conversation]:
    """Conversations of one .jsonl/.json/.csv file.

    A malformed record raises ``DataError``; with ``on_error``, a record that is
    malformed on its own (a bad JSONL line, a bad CSV row or JSON list item) is
    passed to it instead and reading goes on. A file whose structure is broken
    (a JSON list with a syntax error, a CSV without the needed columns) always raises.
    """
    kind = input_format(Path(path))
    reader = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv}[kind]
    yield from reader(path, on_error)


def _record(build: Callable[[], list[dict[str, str]]], where: str, on_error: OnError | None) -> Conversation | None:
    try:
        return Conversation(build(), where)
    except DataError as exc:
        if on_error is None:
            raise
        on_error(exc)
        return None


# --- JSON and JSONL --------------------------------------------------------------------------------


def _read_jsonl(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                where = f"{path}:{number}"
                conversation = _record(lambda: messages_from_record(_json_line(line, where), where), where, on_error)
                if conversation:
                    yield conversation


def _json_line(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(where, f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON "
                               "object") from None


def _read_json(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    """A JSON list of records, each reported at the line where it starts."""
    text = Path(path).read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position < len(text) and text[position] != "[":
        try:
            record, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg})") from None
        if isinstance(record, dict) and _skip_space(text, end) == len(text):
            conversation = _record(lambda: messages_from_record(record, f"{path}:1"), f"{path}:1", on_error)
            if conversation:
                yield conversation
            return
        raise DataError(f"{path}:1", "expected a JSON list of conversations")
    if position >= len(text):
        raise DataError(f"{path}:1", "the file is empty; expected a JSON list of conversations")
    position = _skip_space(text, position + 1)
    first = True
    while True:
        if position < len(text) and text[position] == "]":
            if _skip_space(text, position + 1) != len(text):
                raise DataError(f"{path}:{_line(text, position)}", "unexpected text after the closing ]")
            return
        if not first:
            if position >= len(text) or text[position] != ",":
                raise DataError(f"{path}:{_line(text, position)}", "expected , or ] between conversations")
            position = _skip_space(text, position + 1)
        first = False
        where = f"{path}:{_line(text, position)}"
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        conversation = _record(lambda: messages_from_record(record, where), where, on_error)
        if conversation:
            yield conversation
        position = _skip_space(text, position)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def messages_from_record(record: Any, where: str) -> list[dict[str, str]]:
    """An OpenAI (``messages``) or ShareGPT (``conversations``) record -> messages with role and content."""
    if not isinstance(record, dict):
        raise DataError(where, f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        return _openai_messages(record["messages"], where)
    if "conversations" in record:
        return _sharegpt_messages(record["conversations"], where)
    keys = ", ".join(sorted(record)) or "none"
    raise DataError(where, f"the record has neither 'messages' (OpenAI format) nor 'conversations' (ShareGPT "
                           f"format); its keys: {keys}")


def _openai_messages(messages: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise DataError(where, "'messages' must be a non-empty list of {\"role\", \"content\"} objects")
    out = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message:
            raise DataError(where, f"message {index} must be an object with 'role' and 'content'")
        role = _OPENAI_ROLES.get(str(message["role"]).lower())
        if role is None:
            raise DataError(where, f"message {index} has role {message['role']!r}; expected system, user or "
                                   "assistant (tool calls are not supported)")
        out.append({"role": role, "content": _content(message.get("content"), where, index)})
    return out


def _content(content: Any, where: str, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "..."}]
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise DataError(where, f"message {index} has a content part that is not text; only text is "
                                       "supported")
        return "\n".join(parts)
    raise DataError(where, f"message {index} has content of type {type(content).__name__}; expected a string")


def _sharegpt_messages(turns: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(turns, list) or not turns:
        raise DataError(where, "'conversations' must be a non-empty list of {\"from\", \"value\"} objects")
    out = []
    for index, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise DataError(where, f"turn {index} must be an object with 'from' and 'value'")
        speaker = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = _SHAREGPT_ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            raise DataError(where, f"turn {index} is from {speaker!r}; expected human, gpt or system")
        if value is not None and not isinstance(value, str):
            raise DataError(where, f"turn {index} has a 'value' of type {type(value).__name__}; expected a string")
        out.append({"role": role, "content": value or ""})
    return out


# --- CSV -------------------------------------------------------------------------------------------


def _read_csv(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        if "text" in columns:
            kind = "text"
        elif "prompt" in columns and ("response" in columns or "completion" in columns):
            kind = "pair"
        else:
            found = ", ".join(columns) or "none"
            raise DataError(f"{path}:1", f"the header needs a 'text' column, or 'prompt' and 'response' columns "
                                         f"(AutoTrain LLM formats); found: {found}")
        answer_column = columns.get("response") or columns.get("completion")
        line = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}:{reader.line_num}", f"not valid CSV ({exc})") from None
            where = f"{path}:{line}"
            line = reader.line_num + 1
            conversation = _record(lambda: _csv_row(row, kind, columns, answer_column, where), where, on_error)
            if conversation:
                yield conversation


def _csv_row(row: dict, kind: str, columns: dict, answer_column: str | None, where: str) -> list[dict[str, str]]:
    if None in row:
        raise DataError(where, f"the row has {len(row) - 1 + len(row[None])} fields, the header {len(row) - 1}")
    if kind == "text":
        return messages_from_text(row[columns["text"]] or "", where)
    prompt, response = row[columns["prompt"]] or "", row[answer_column] or ""
    if not prompt.strip() or not response.strip():
        raise DataError(where, "the prompt or the response is empty")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def messages_from_text(text: str, where: str) -> list[dict[str, str]]:
    """AutoTrain's ``text`` column: a JSON list of messages, or ``### Human:`` / ``### Assistant:`` turns."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataError(where, f"the text column starts with [ but is not a valid JSON list of messages "
                                   f"({exc.msg})") from None
        return _openai_messages(messages, where)
    markers = list(_TEXT_MARKER.finditer(text))
    if not markers:
        raise DataError(where, "the text column is neither a JSON list of messages nor turns marked "
                               "'### Human:' and '### Assistant:'")
    if text[: markers[0].start()].strip():
        raise DataError(where, "the text column has text before its first '### Human:' marker")
    messages = []
    for marker, following in zip(markers, markers[1:] + [None]):
        end = following.start() if following else len(text)
        messages.append({"role": _MARKER_ROLES[marker.group(1).lower()], "content": text[marker.end():end].strip()})
    return messages
