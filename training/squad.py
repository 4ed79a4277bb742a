"""SQuAD v1.1 and v2.0 JSON -> one conversation per question, the passage in the user message.

    {"version": "v2.0", "data": [{"title": "Tent", "paragraphs": [{"context": "...", "qas": [
        {"id": "...", "question": "...", "answers": [{"text": "...", "answer_start": 12}],
         "is_impossible": false}]}]}]}

The user message is the question, then the passage in the shape the action server gives its
sources (``ridgeline.catalog.with_sources``: the question, a blank line, a heading, numbered
sources), so the model sees one format::

    Who makes the tent?

    Passages that may answer this (answer only from these):
    [1] Tent: A tent is a shelter ...

The reply is the first answer's text, exactly as the span reads. An unanswerable question
(v2.0 ``"is_impossible": true``, or no answers in a v2.0 file) gets ``UNANSWERABLE_REPLY``, a
decline that ``ridgeline.grounding.is_decline`` recognises. Each question's ``source`` is the
file and the line its question object starts on.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from training.formats import Conversation, DataError, OnError, attempt, skip_space

PASSAGES_HEADING = "Passages that may answer this (answer only from these):"
UNANSWERABLE_REPLY = "Sorry, I can't find the answer to that in the sources."
# top object > data list > article > paragraphs list > paragraph > qas list > question object
_SQUAD_DEPTH = 6


# --- the passage block, as the action server writes sources --------------------------------------


def passage_line(number: int, title: str, passage: str) -> str:
    """``[1] Title: passage``: one numbered source, as ``ridgeline.catalog.source_line`` numbers products."""
    return f"[{number}] {title}: {passage}" if title else f"[{number}] {passage}"


def passages_block(passages: list[tuple[str, str]]) -> str:
    """The heading and the numbered ``(title, passage)`` sources; empty when there are none."""
    if not passages:
        return ""
    return "\n".join([PASSAGES_HEADING, *(passage_line(i, t, p) for i, (t, p) in enumerate(passages, 1))])


def with_passages(question: str, passages: list[tuple[str, str]]) -> str:
    """A question as the model gets it: the question, a blank line, then its passages."""
    block = passages_block(passages)
    return f"{question}\n\n{block}" if block else question


# --- JSON objects that know their line -----------------------------------------------------------


class Located(dict):
    """A JSON object, with ``line``: the line of the file its ``{`` is on."""

    line: int = 1


class _LocatedParser:
    """Parses the outer ``depth`` levels of JSON by hand, recording where each object starts; deeper
    values are decoded whole by ``json`` (fast), objects among them still ``Located``."""

    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self.decoder = json.JSONDecoder()
        self._counted = (0, 1)  # (position, its line): positions only grow, so lines are counted once

    def line(self, position: int) -> int:
        counted_to, line = self._counted
        if position < counted_to:
            return self.text.count("\n", 0, position) + 1
        line += self.text.count("\n", counted_to, position)
        self._counted = (position, line)
        return line

    def fail(self, position: int, what: str) -> DataError:
        return DataError(f"{self.path}:{self.line(position)}", f"not valid JSON ({what})")

    def value(self, position: int, depth: int) -> tuple[Any, int]:
        position = skip_space(self.text, position)
        if depth > 0 and self.text.startswith("{", position):
            return self.object(position, depth)
        if depth > 0 and self.text.startswith("[", position):
            return self.array(position, depth)
        line = self.line(position)
        try:
            value, end = self.decoder.raw_decode(self.text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.path}:{exc.lineno}", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(value, dict):
            value = Located(value)
            value.line = line
        return value, end

    def object(self, position: int, depth: int) -> tuple[Located, int]:
        result = Located()
        result.line = self.line(position)
        position = skip_space(self.text, position + 1)
        if self.text.startswith("}", position):
            return result, position + 1
        while True:
            if not self.text.startswith('"', position):
                raise self.fail(position, 'expected a "name" in double quotes')
            key, position = self.value(position, 0)
            position = skip_space(self.text, position)
            if not self.text.startswith(":", position):
                raise self.fail(position, "expected : after a name")
            result[key], position = self.value(position + 1, depth - 1)
            position = skip_space(self.text, position)
            if self.text.startswith("}", position):
                return result, position + 1
            if not self.text.startswith(",", position):
                raise self.fail(position, "expected , or } in an object")
            position = skip_space(self.text, position + 1)

    def array(self, position: int, depth: int) -> tuple[list, int]:
        result: list = []
        position = skip_space(self.text, position + 1)
        if self.text.startswith("]", position):
            return result, position + 1
        while True:
            item, position = self.value(position, depth - 1)
            result.append(item)
            position = skip_space(self.text, position)
            if self.text.startswith("]", position):
                return result, position + 1
            if not self.text.startswith(",", position):
                raise self.fail(position, "expected , or ] in a list")
            position = skip_space(self.text, position + 1)


def located_json(text: str, path: str, depth: int = _SQUAD_DEPTH) -> Any:
    """The JSON document ``text``, its objects down to ``depth`` levels (and one below) ``Located``."""
    parser = _LocatedParser(text, path)
    value, end = parser.value(0, depth)
    if skip_space(text, end) != len(text):
        raise parser.fail(skip_space(text, end), "unexpected text after the end of the document")
    return value


# --- SQuAD ---------------------------------------------------------------------------------------


def is_squad(record: Any) -> bool:
    """Whether a JSON document is SQuAD: an object with a ``data`` key (and no chat messages)."""
    return isinstance(record, dict) and "data" in record and not {"messages", "conversations"} & set(record)


def squad_conversations(record: dict, path: str, on_error: OnError | None = None) -> Iterator[Conversation]:
    """One conversation per question of a SQuAD document parsed by ``located_json``.

    A malformed article, paragraph or question raises ``DataError`` at the line its object starts
    on; with ``on_error`` it goes there instead and is skipped (with all it holds).
    """
    version = str(record.get("version", "")).strip().lower().lstrip("v")
    unanswerable_allowed = version.startswith("2")
    articles = record["data"]
    if not isinstance(articles, list):
        raise DataError(_where(path, record), "'data' must be a list of articles, each "
                                              '{"title": ..., "paragraphs": [...]} (SQuAD format)')
    for article in articles:
        paragraphs = attempt(lambda: _paragraphs(article, path, record), on_error) or []
        for title, paragraph in paragraphs:
            questions = attempt(lambda: _questions(paragraph, path), on_error) or []
            for question in questions:
                where = _where(path, question, paragraph)
                conversation = attempt(lambda: Conversation(
                    _question_messages(question, title, paragraph["context"], unanswerable_allowed, where), where,
                ), on_error)
                if conversation:
                    yield conversation


def _where(path: str, item: Any, parent: Any = None) -> str:
    line = getattr(item, "line", None) or getattr(parent, "line", 1)
    return f"{path}:{line}"


def _paragraphs(article: Any, path: str, parent: Any) -> list[tuple[str, Any]]:
    where = _where(path, article, parent)
    if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
        raise DataError(where, "an article must be an object with a 'paragraphs' list (SQuAD format)")
    title = article.get("title", "")
    if not isinstance(title, str):
        raise DataError(where, f"the article's 'title' is a {type(title).__name__}; make it a string")
    return [(title.replace("_", " ").strip(), paragraph) for paragraph in article["paragraphs"]]


def _questions(paragraph: Any, path: str) -> list:
    where = _where(path, paragraph)
    if not isinstance(paragraph, dict):
        raise DataError(where, "a paragraph must be an object with 'context' and 'qas'")
    context = paragraph.get("context")
    if not isinstance(context, str) or not context.strip():
        raise DataError(where, "the paragraph has no 'context' text; add the passage its questions are about")
    if not isinstance(paragraph.get("qas"), list):
        raise DataError(where, "the paragraph has no 'qas' list of questions")
    return paragraph["qas"]


def _question_messages(question: Any, title: str, context: str, unanswerable_allowed: bool,
                       where: str) -> list[dict[str, str]]:
    if not isinstance(question, dict):
        raise DataError(where, "a question must be an object with 'question' and 'answers'")
    text = question.get("question")
    if not isinstance(text, str) or not text.strip():
        raise DataError(where, "the question has no 'question' text; add it or remove the question")
    return [{"role": "user", "content": with_passages(text.strip(), [(title, context)])},
            {"role": "assistant", "content": _reply(question, context, unanswerable_allowed, where)}]


def _reply(question: dict, context: str, unanswerable_allowed: bool, where: str) -> str:
    """The first answer's text, or the decline of an unanswerable question."""
    answers = question.get("answers", [])
    impossible = question.get("is_impossible", False)
    if not isinstance(answers, list):
        raise DataError(where, "'answers' must be a list of {\"text\", \"answer_start\"} objects")
    if not isinstance(impossible, bool):
        raise DataError(where, f"'is_impossible' is {impossible!r}; make it true or false")
    if impossible and answers:
        raise DataError(where, "the question is marked \"is_impossible\": true but has answers; set it to false "
                               "or empty its 'answers'")
    if not answers:
        if impossible or unanswerable_allowed:
            return UNANSWERABLE_REPLY
        raise DataError(where, "the question has no answers; a SQuAD v1.1 question needs at least one (mark an "
                               "unanswerable one \"is_impossible\": true, as SQuAD v2.0 does)")
    for number, answer in enumerate(answers, 1):
        _check_answer(answer, number, context, where)
    return answers[0]["text"]


def _check_answer(answer: Any, number: int, context: str, where: str) -> None:
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or not answer["text"].strip():
        raise DataError(where, f"answer {number} must be an object with a non-empty 'text' and an 'answer_start'")
    text, start = answer["text"], answer.get("answer_start")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise DataError(where, f"answer {number} has 'answer_start' {start!r}; it must be the position (0 or more) "
                               "of the answer's first character in the context")
    found = context[start:start + len(text)]
    if found != text:
        actual = context.find(text)
        hint = f"the text starts at {actual}" if actual >= 0 else "the context does not hold that text"
        raise DataError(where, f"answer {number}'s 'answer_start' {start} points at {found!r}, not at {text!r}; "
                               f"fix answer_start ({hint})")
