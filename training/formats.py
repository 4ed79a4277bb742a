"""Readers, one per input format, that turn each conversation (or preference pair) into chat messages.

Every reader yields ``Conversation``s (or ``training.preference_data.PreferencePair``s) whose
``source`` names the file and line (or tracker-store row) it came from, and raises ``DataError``
naming that place when a record is malformed. Conversation formats:

- OpenAI chat JSONL: ``{"messages": [{"role": "user", "content": "..."}, ...]}`` per line;
- ShareGPT, JSON (a list) or JSONL: ``{"conversations": [{"from": "human", "value": "..."}, ...]}``;
- CSV in the AutoTrain LLM formats: a ``text`` column (a JSON list of messages, or
  ``### Human: ... ### Assistant: ...`` turns), or ``prompt`` and ``response`` columns;
- SQuAD v1.1 and v2.0 JSON (``{"data": [{"paragraphs": [...]}]}``): one conversation per
  question, the passage in the user message (see ``training.squad``);
- a Rasa tracker store, given as an SQLAlchemy URL: see ``training.tracker``.

Preference formats (``file_kind`` says ``"preferences"``; see ``training.preference_data``):

- AutoTrain CSV: ``text`` and ``rejected_text`` columns (whole conversations that differ in their
  last reply), optionally with a ``prompt`` column (then both hold just the reply); or ``prompt``,
  ``chosen`` and ``rejected`` columns;
- TRL preference JSONL: ``{"prompt": ..., "chosen": ..., "rejected": ...}`` (strings or message
  lists), or ``{"chosen": [...], "rejected": [...]}`` whole conversations (the implicit prompt).

``read_file`` reads conversation files; ``read_records`` reads any file.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

if TYPE_CHECKING:
    from training.preference_data import PreferencePair

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
                raise DataError(spec, UNSUPPORTED_FILE_TYPE)
            expanded.append(spec)
        else:
            raise DataError(spec, "no such file or folder (an SQL URL looks like sqlite:///rasa.db)")
    return expanded


OnError = Callable[[DataError], None]
T = TypeVar("T")

CONVERSATIONS = "conversations"
PREFERENCES = "preferences"
_PREFERENCE_COLUMNS = {"rejected_text", "chosen", "rejected"}
UNSUPPORTED_FILE_TYPE = (
    "unsupported file type; use .jsonl (OpenAI or ShareGPT chats, or TRL preference pairs: prompt, chosen, "
    "rejected), .json (ShareGPT chats or SQuAD v1.1/v2.0), .csv (AutoTrain: text, or prompt + response "
    "columns; preference pairs: text + rejected_text, or prompt + chosen + rejected) or an SQL URL of a "
    "tracker store"
)


def file_kind(path: str) -> str:
    """``"preferences"`` for a file of preference pairs, ``"conversations"`` for the others.

    A CSV holds pairs when its header has ``rejected_text``, ``chosen`` or ``rejected``; a JSONL
    file when its first JSON object has ``chosen`` or ``rejected``. JSON files hold conversations.
    """
    kind = input_format(Path(path))
    if kind == "csv":
        return PREFERENCES if _PREFERENCE_COLUMNS & set(csv_columns(path)) else CONVERSATIONS
    if kind == "jsonl":
        first = _first_jsonl_object(path)
        return PREFERENCES if first is not None and ("chosen" in first or "rejected" in first) else CONVERSATIONS
    return CONVERSATIONS


def _first_jsonl_object(path: str) -> dict | None:
    with open(path, encoding="utf-8-sig") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                return record
    return None


def read_records(path: str, on_error: OnError | None = None) -> Iterator[Conversation | PreferencePair]:
    """Conversations or preference pairs of one .jsonl/.json/.csv file (``file_kind`` says which).

    Errors as for ``read_file``.
    """
    if file_kind(path) == PREFERENCES:
        from training.preference_data import read_preferences

        yield from read_preferences(path, on_error)
    else:
        yield from _read_conversations(path, on_error)


def read_file(path: str, on_error: OnError | None = None) -> Iterator[Conversation]:
    """Conversations of one .jsonl/.json/.csv file; a file of preference pairs is a ``DataError``.

    A malformed record raises ``DataError``; with ``on_error``, a record that is
    malformed on its own (a bad JSONL line, a bad CSV row, JSON list item or SQuAD
    question) is passed to it instead and reading goes on. A file whose structure is broken
    (a JSON list with a syntax error, a CSV without the needed columns) always raises.
    """
    if file_kind(path) == PREFERENCES:
        raise DataError(f"{path}:1", "the file holds preference pairs (chosen and rejected replies), not "
                                     "conversations; read it with training.formats.read_records")
    yield from _read_conversations(path, on_error)


def _read_conversations(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    kind = input_format(Path(path))
    reader = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv}[kind]
    yield from reader(path, on_error)


def attempt(build: Callable[[], T], on_error: OnError | None) -> T | None:
    """``build()``; a ``DataError`` it raises goes to ``on_error`` (and gives None), or without one is raised."""
    try:
        return build()
    except DataError as exc:
        if on_error is None:
            raise
        on_error(exc)
        return None


def _record(build: Callable[[], list[dict[str, str]]], where: str, on_error: OnError | None) -> Conversation | None:
    return attempt(lambda: Conversation(build(), where), on_error)


# --- JSON and JSONL --------------------------------------------------------------------------------


def _read_jsonl(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                where = f"{path}:{number}"
                conversation = _record(lambda: messages_from_record(json_line(line, where), where), where, on_error)
                if conversation:
                    yield conversation


def json_line(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(where, f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON "
                               "object") from None


def _read_json(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    """A JSON list of records, each reported at the line where it starts; or one object: a conversation,
    or a SQuAD file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    position = skip_space(text, 0)
    if text.startswith("{", position):
        yield from _read_json_object(path, text, on_error)
        return
    if position < len(text) and text[position] != "[":
        try:
            record, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg})") from None
        if isinstance(record, dict) and skip_space(text, end) == len(text):
            conversation = _record(lambda: messages_from_record(record, f"{path}:1"), f"{path}:1", on_error)
            if conversation:
                yield conversation
            return
        raise DataError(f"{path}:1", "expected a JSON list of conversations")
    if position >= len(text):
        raise DataError(f"{path}:1", "the file is empty; expected a JSON list of conversations")
    position = skip_space(text, position + 1)
    first = True
    while True:
        if position < len(text) and text[position] == "]":
            if skip_space(text, position + 1) != len(text):
                raise DataError(f"{path}:{_line(text, position)}", "unexpected text after the closing ]")
            return
        if not first:
            if position >= len(text) or text[position] != ",":
                raise DataError(f"{path}:{_line(text, position)}", "expected , or ] between conversations")
            position = skip_space(text, position + 1)
        first = False
        where = f"{path}:{_line(text, position)}"
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        conversation = _record(lambda: messages_from_record(record, where), where, on_error)
        if conversation:
            yield conversation
        position = skip_space(text, position)


def _read_json_object(path: str, text: str, on_error: OnError | None) -> Iterator[Conversation]:
    from training.squad import is_squad, located_json, squad_conversations

    record = located_json(text, path)
    if is_squad(record):
        yield from squad_conversations(record, path, on_error)
        return
    conversation = _record(lambda: messages_from_record(record, f"{path}:1"), f"{path}:1", on_error)
    if conversation:
        yield conversation


def skip_space(text: str, position: int) -> int:
    """The first position at or after ``position`` that is not JSON whitespace."""
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
        return openai_messages(record["messages"], where)
    if "conversations" in record:
        return _sharegpt_messages(record["conversations"], where)
    if "chosen" in record or "rejected" in record:
        raise DataError(where, "a preference pair (chosen and rejected) in a file of conversations; put the pairs "
                               "in a file of their own, whose first record is a pair")
    keys = ", ".join(sorted(record)) or "none"
    raise DataError(where, f"the record has neither 'messages' (OpenAI format) nor 'conversations' (ShareGPT "
                           f"format); its keys: {keys}")


def openai_messages(messages: Any, where: str, field: str = "messages") -> list[dict[str, str]]:
    """A list of OpenAI ``{"role", "content"}`` messages -> messages with role (system, user, assistant)
    and text content; ``field`` names the list in errors ("'chosen' message 2 has role ...")."""
    if not isinstance(messages, list) or not messages:
        raise DataError(where, f"'{field}' must be a non-empty list of {{\"role\", \"content\"}} objects")
    label = "message" if field == "messages" else f"'{field}' message"
    out = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message:
            raise DataError(where, f"{label} {index} must be an object with 'role' and 'content'")
        role = _OPENAI_ROLES.get(str(message["role"]).lower())
        if role is None:
            raise DataError(where, f"{label} {index} has role {message['role']!r}; expected system, user or "
                                   "assistant (tool calls are not supported)")
        out.append({"role": role, "content": _content(message.get("content"), where, f"{label} {index}")})
    return out


def _content(content: Any, where: str, label: str) -> str:
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
                raise DataError(where, f"{label} has a content part that is not text; only text is supported")
        return "\n".join(parts)
    raise DataError(where, f"{label} has content of type {type(content).__name__}; expected a string")


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


def csv_columns(path: str) -> dict[str, str]:
    """The header of a CSV file: each column's name, trimmed and lower-cased -> its name as written."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        fieldnames = csv.DictReader(handle).fieldnames or []
    return {(name or "").strip().lower(): name for name in fieldnames}


def csv_rows(path: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(path:line, row)`` for each data row of a CSV file; a row broken as CSV raises ``DataError``."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:  # reading the header; an empty file has no rows
            return
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
            yield where, row


def check_row_width(row: dict, where: str) -> None:
    """A row with more fields than the header is a ``DataError``."""
    if None in row:
        raise DataError(where, f"the row has {len(row) - 1 + len(row[None])} fields, the header {len(row) - 1}")


def _read_csv(path: str, on_error: OnError | None) -> Iterator[Conversation]:
    columns = csv_columns(path)
    if "text" in columns:
        kind = "text"
    elif "prompt" in columns and ("response" in columns or "completion" in columns):
        kind = "pair"
    else:
        found = ", ".join(columns) or "none"
        raise DataError(f"{path}:1", f"the header needs a 'text' column, or 'prompt' and 'response' columns "
                                     f"(AutoTrain LLM formats); found: {found}")
    answer_column = columns.get("response") or columns.get("completion")
    for where, row in csv_rows(path):
        conversation = _record(lambda: _csv_row(row, kind, columns, answer_column, where), where, on_error)
        if conversation:
            yield conversation


def _csv_row(row: dict, kind: str, columns: dict, answer_column: str | None, where: str) -> list[dict[str, str]]:
    check_row_width(row, where)
    if kind == "text":
        return messages_from_text(row[columns["text"]] or "", where)
    prompt, response = row[columns["prompt"]] or "", row[answer_column] or ""
    if not prompt.strip() or not response.strip():
        raise DataError(where, "the prompt or the response is empty")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def messages_from_text(text: str, where: str, column: str = "text") -> list[dict[str, str]]:
    """AutoTrain's ``text`` column: a JSON list of messages, or ``### Human:`` / ``### Assistant:`` turns."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataError(where, f"the {column} column starts with [ but is not a valid JSON list of messages "
                                   f"({exc.msg})") from None
        return openai_messages(messages, where)
    markers = list(_TEXT_MARKER.finditer(text))
    if not markers:
        raise DataError(where, f"the {column} column is neither a JSON list of messages nor turns marked "
                               "'### Human:' and '### Assistant:'")
    if text[: markers[0].start()].strip():
        raise DataError(where, f"the {column} column has text before its first '### Human:' marker")
    messages = []
    for marker, following in zip(markers, markers[1:] + [None]):
        end = following.start() if following else len(text)
        messages.append({"role": _MARKER_ROLES[marker.group(1).lower()], "content": text[marker.end():end].strip()})
    return messages
