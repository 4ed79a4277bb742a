"""The designers' file of judged LLM replies, and the training data it becomes.

``review feedback --output FILE.yml`` writes one item per judged reply: its ``id``, the ``verdict``,
the ``context`` the LLM got (chat messages ending with the visitor's question, rebuilt with the
catalog sources it was given), the ``reply`` and an empty ``better_reply`` for the designer to
write. Writing the file again rebuilds every item from the tracker and keeps each ``better_reply``
already written (matched by ``id``), also of items no longer selected: a designer's work is never
lost, so an item that cannot be matched (a file that is not YAML, an item without its ``id``) stops
the rewrite rather than being dropped.

``review export-preferences`` turns the items with a ``better_reply`` into TRL preference pairs
(``prompt``, ``chosen``, ``rejected``) and, with ``--sft-output``, the thumbs-up replies into
OpenAI chat examples. No system message: ``python -m training prepare`` puts the store's first.

Each conversation's items sit between review/files.py's YAML markers, so ``forget`` cuts a
visitor's items out and keeps the rest, better replies included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from review import files
from review.privacy import Masker
from review.verdicts import DEFAULT_CONTEXT_MESSAGES, JudgedReply, context
from ridgeline.catalog import Product, read_catalog, with_sources
from ridgeline.feedback import HELPFUL, VERDICTS

FIELDS = ("id", "verdict", "context", "reply", "better_reply")
ROLES = ("user", "assistant")
ID_PATTERN = re.compile(r"[0-9a-f]{16}:[0-9a-f]{12}")
VERSION = 1

HEADER = """\
# Visitors' verdicts on the assistant's LLM replies (python -m review feedback --output THIS_FILE).
#
# For each item with `verdict: down`, write in `better_reply` the reply the assistant should have
# given: right for the store, true to the catalog sources in the last `context` message, and in
# the assistant's voice. A block keeps it readable:
#
#   better_reply: |
#     The Skyline 2 (RO-10002) sleeps two and weighs 1,190 g, ...
#
# Leave `better_reply: ""` to skip an item. `verdict: up` items are replies visitors liked: they
# become fine-tuning examples as they are (export-preferences --sft-output).
#
# Change nothing else: writing this file again (same command) rebuilds id, verdict, context and
# reply from the conversations and keeps every better_reply you wrote, matched by id. Comments you
# add are not kept. The `# review:begin/end` lines mark whose conversation each item came from
# (for `python -m review forget`): leave them.
#
# Then: python -m review export-preferences --input THIS_FILE --output var/review/pairs.jsonl
"""


class FeedbackFileError(ValueError):
    """The designers' file cannot be used; the message names the file, the items and what to change."""


# ---------------------------------------------------------------- writing


def catalog_by_sku(path: Path | str) -> dict[str, Product]:
    """The catalog the action server gives the LLM its sources from (``CatalogError`` when malformed)."""
    return {product.sku: product for product in read_catalog(path)}


def feedback_item(judged: JudgedReply, catalog: dict[str, Product], mask: Masker,
                  max_messages: int = DEFAULT_CONTEXT_MESSAGES) -> tuple[dict[str, Any] | None, list[str]]:
    """The item for one judged reply (None when it answered no user message) and warnings.

    The question is rebuilt as the LLM got it: ``with_sources`` of the reply's source SKUs, looked
    up in the catalog now; an SKU no longer there is left out (with a warning), so the numbering of
    the sources after it may differ from what the LLM saw. Personal data becomes stand-ins of the
    same shape, as in the other exports (review/privacy.py).
    """
    turns = context(judged.turns, max_messages)
    if not turns:
        return None, [f"LLM reply {judged.reply_id} ({judged.item_id}) answered no user message in the tracker; "
                      "left out"]
    products, warnings = [], []
    for sku in judged.sources:
        if sku in catalog:
            products.append(catalog[sku])
        else:
            warnings.append(f"LLM reply {judged.reply_id} ({judged.item_id}): source {sku} is no longer in the "
                            "catalog; its question is rebuilt without it")
    messages = [{"role": turn.role, "content": mask.export(turn.text)} for turn in turns]
    messages[-1]["content"] = with_sources(messages[-1]["content"], products)
    return {"id": judged.item_id, "verdict": judged.verdict, "context": messages,
            "reply": mask.export(judged.text), "better_reply": ""}, warnings


@dataclass
class Merged:
    """The file's items by conversation key (file order), and what was kept from the file before."""
    groups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kept: int = 0     # better replies carried onto rebuilt items
    carried: int = 0  # items with a better reply no longer selected, kept as they were

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for group in self.groups.values() for item in group]


def conversation_key(item_id: str) -> str:
    return item_id.split(":", 1)[0]


def merge(fresh: list[dict[str, Any]], previous: list[dict[str, Any]]) -> Merged:
    """``fresh`` items with the better replies of ``previous`` (same id); items of ``previous`` with
    a better reply that ``fresh`` lacks (another --since, a changed verdict, a pruned conversation)
    stay, after the fresh ones of their conversation."""
    answered = {item["id"]: item for item in previous if (item.get("better_reply") or "").strip()}
    merged = Merged()
    for item in fresh:
        old = answered.pop(item["id"], None)
        if old is not None:
            item = {**item, "better_reply": old["better_reply"]}
            merged.kept += 1
        merged.groups.setdefault(conversation_key(item["id"]), []).append(item)
    for item_id, old in answered.items():
        merged.groups.setdefault(conversation_key(item_id), []).append(old)
        merged.carried += 1
    return merged


class _Dumper(yaml.SafeDumper):
    """Multi-line text as ``|`` blocks (as it reads, no escapes); the empty better_reply as ``""``."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else ('"' if text == "" else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def feedback_yaml(merged: Merged) -> str:
    """The file: the header, then each conversation's items between its ``forget`` markers."""
    begin, end = files.MARKERS["yaml"]
    lines = [HEADER, f"version: {VERSION}", "items:" if merged.groups else "items: []"]
    for key, items in merged.groups.items():
        body = yaml.dump(items, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                         width=1_000_000)
        lines += [begin.format(key=key), body.rstrip("\n"), end.format(key=key)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Item:
    where: str  # "item 3 (line 42, id ...)": how an error names it
    data: Any


def read_items(path: Path) -> list[Item]:
    """The file's items; ``FeedbackFileError`` when it is not YAML or not shaped as ``feedback`` writes it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FeedbackFileError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise FeedbackFileError(f"{where}: not valid YAML ({problem}); check the indentation there and write "
                                "better_reply as a `|` block, its lines indented under it (text on the key's own "
                                "line cannot hold `: ` or ` #`)") from None
    if data is None:
        return []
    if not isinstance(data, dict) or "items" not in data or not isinstance(data["items"], (list, type(None))):
        raise FeedbackFileError(f"{path}: expected `items:` and a list of items under it, as "
                                "`python -m review feedback --output` writes it")
    items = data["items"] or []
    lines = _item_lines(root)
    return [Item(_where(number, lines, raw), raw) for number, raw in enumerate(items, 1)]


def _item_lines(root: yaml.Node | None) -> list[int]:
    """The line each item starts on, from the composed file (``safe_load`` forgets where things were)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "items" and isinstance(value, yaml.SequenceNode):
            return [child.start_mark.line + 1 for child in value.value]
    return []


def _where(number: int, lines: list[int], raw: Any) -> str:
    line = f"line {lines[number - 1]}, " if number <= len(lines) else ""
    item_id = raw.get("id") if isinstance(raw, dict) else None
    return f"item {number} ({line}id {item_id})" if isinstance(item_id, str) else f"item {number} ({line}no id)"


def identity_problems(items: list[Item]) -> list[str]:
    """What stops matching the items to their conversations: a rewrite would lose their better replies."""
    problems, seen = [], {}
    for item in items:
        if not isinstance(item.data, dict):
            problems.append(f"{item.where}: not an item of keys {', '.join(FIELDS)}; check its indentation")
            continue
        item_id = item.data.get("id")
        if not isinstance(item_id, str) or not ID_PATTERN.fullmatch(item_id):
            problems.append(f"{item.where}: `id` must be as `review feedback` wrote it (16 hex characters, `:`, "
                            "12 hex characters); put the original back")
        elif item_id in seen:
            problems.append(f"{item.where}: the same id as {seen[item_id]}; delete one of the two")
        else:
            seen[item_id] = item.where
        better = item.data.get("better_reply")
        if better is not None and not isinstance(better, str):
            problems.append(f"{item.where}: `better_reply` must be text; quote it or write it as a `|` block")
    return problems


def item_problems(item: Item) -> list[str]:
    """What stops one (identifiable) item from becoming training data, each with what to change."""
    data = item.data
    problems = [f"{item.where}: no `{name}`; put it back as `review feedback` wrote it (writing the file again "
                "restores it and keeps your better_reply)" for name in FIELDS if name not in data]
    problems += [f"{item.where}: unknown key `{name}`; the keys are {', '.join(FIELDS)}: remove it"
                 for name in data if name not in FIELDS]
    if "verdict" in data and data["verdict"] not in VERDICTS:
        problems.append(f"{item.where}: `verdict` must be {' or '.join(VERDICTS)}, not {data['verdict']!r}")
    if "context" in data:
        problems += context_problems(item.where, data["context"])
    if "reply" in data and (not isinstance(data["reply"], str) or not data["reply"].strip()):
        problems.append(f"{item.where}: `reply` must be the model's reply as text; put it back")
    reply, better = data.get("reply"), data.get("better_reply")
    if isinstance(reply, str) and isinstance(better, str) and better.strip() and better.strip() == reply.strip():
        problems.append(f"{item.where}: `better_reply` is the same as `reply`; write the reply the assistant should "
                        "have given, or `better_reply: \"\"` to skip the item")
    return problems


def context_problems(where: str, messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{where}: `context` must be the list of messages before the reply; put it back"]
    problems = []
    for number, message in enumerate(messages, 1):
        if (not isinstance(message, dict) or set(message) != {"role", "content"} or message["role"] not in ROLES
                or not isinstance(message["content"], str) or not message["content"].strip()):
            problems.append(f"{where}: context message {number} must be `role: user` or `role: assistant` with its "
                            "`content` text, and nothing else")
    if not problems and messages[-1]["role"] != "user":
        problems.append(f"{where}: the last context message must be the visitor's question (`role: user`)")
    return problems


def checked_items(path: Path, complete: bool) -> list[dict[str, Any]]:
    """The file's items, refused with every problem found (``complete``: also what an export needs)."""
    items = read_items(path)
    problems = identity_problems(items)
    if complete and not problems:
        problems = [problem for item in items for problem in item_problems(item)]
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise FeedbackFileError(f"{path}: {len(problems)} problem{'s' * (len(problems) != 1)}, nothing written:\n"
                                f"{listed}")
    return [item.data for item in items]


# ---------------------------------------------------------------- training data


@dataclass
class Exported:
    pairs: list[dict[str, Any]] = field(default_factory=list)  # TRL preference rows
    good: list[dict[str, Any]] = field(default_factory=list)   # OpenAI chat rows of thumbs-up replies
    skipped: int = 0                                           # items without a better_reply
    pair_keys: set[str] = field(default_factory=set)           # the conversations behind each
    good_keys: set[str] = field(default_factory=set)


def training_rows(items: list[dict[str, Any]]) -> Exported:
    """A preference pair per item with a better reply (the model's reply rejected); an example
    per thumbs-up reply, as the model wrote it."""
    exported = Exported()
    for item in items:
        messages = [{"role": m["role"], "content": m["content"]} for m in item["context"]]
        better = (item["better_reply"] or "").strip()
        if better:
            exported.pairs.append({"prompt": messages, "chosen": [{"role": "assistant", "content": better}],
                                   "rejected": [{"role": "assistant", "content": item["reply"].strip()}]})
            exported.pair_keys.add(conversation_key(item["id"]))
        else:
            exported.skipped += 1
        if item["verdict"] == HELPFUL:
            exported.good.append({"messages": [*messages, {"role": "assistant", "content": item["reply"].strip()}]})
            exported.good_keys.add(conversation_key(item["id"]))
    return exported


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
