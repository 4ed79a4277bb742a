"""The store's facts (knowledge/store.yml): one source for Rasa's FAQ answers and the LLM prompt.

``python -m ridgeline.knowledge write`` regenerates ``rasa_project/domain/faq.yml``;
``python -m ridgeline.knowledge check`` exits 1 when that file is stale.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ridgeline.paths import FAQ_DOMAIN_FILE
from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS

FAQ_TOPICS = ("returns", "shipping", "payment", "warranty", "contact_hours")


class KnowledgeError(ValueError):
    """knowledge/store.yml is missing something the assistant needs."""


@dataclass(frozen=True)
class FaqEntry:
    topic: str
    question: str
    answer: str


@dataclass(frozen=True)
class StoreKnowledge:
    store: dict
    persona: dict
    faq: tuple[FaqEntry, ...]

    @property
    def store_name(self) -> str:
        return self.store["name"]

    def instructions(self) -> str:
        """Who the assistant is and the rules it follows: what a reply must never echo."""
        persona = self.persona
        return "\n".join([
            f"You are {persona['assistant_name']}, the customer support assistant of "
            f"{self.store_name}, an {self.store['kind']}.",
            f"Tone: {persona['tone']}.",
            "Rules:",
            *(f"- {rule}" for rule in persona.get("rules", [])),
        ])

    def facts(self) -> str:
        """Every store fact: what a reply may repeat freely."""
        return "\n".join([
            "Store facts:",
            f"- Website: {self.store['website']}",
            f"- Support email: {self.store['support_email']}; phone: {self.store['support_phone']}",
            f"- Order numbers: {self.store['order_id_format']}",
            *(f"- {entry.question} {entry.answer}" for entry in self.faq),
        ])

    def system_prompt(self) -> str:
        """The persona, rules and every store fact, as the LLM's system message."""
        return f"{self.instructions()}\n\n{self.facts()}"

    def faq_domain(self) -> dict:
        """The Rasa domain fragment with one ``utter_faq/<topic>`` response per FAQ entry."""
        return {
            "version": "3.1",
            "responses": {
                f"utter_faq/{entry.topic}": [{"text": entry.answer}] for entry in self.faq
            },
        }


def _require(mapping: dict, key: str, where: str):
    if not isinstance(mapping, dict) or key not in mapping:
        raise KnowledgeError(f"{where} has no '{key}'; add it (see the comments in knowledge/store.yml).")
    return mapping[key]


def parse(data: dict, source: str = "knowledge/store.yml") -> StoreKnowledge:
    store = _require(data, "store", source)
    for key in ("name", "kind", "website", "support_email", "support_phone", "order_id_format"):
        _require(store, key, f"{source}: store")
    persona = _require(data, "persona", source)
    for key in ("assistant_name", "tone"):
        _require(persona, key, f"{source}: persona")
    faq = _require(data, "faq", source)
    missing = [topic for topic in FAQ_TOPICS if topic not in faq]
    if missing:
        raise KnowledgeError(
            f"{source}: faq lacks {', '.join(missing)}; every FAQ intent of the Rasa project "
            f"({', '.join(FAQ_TOPICS)}) needs an answer."
        )
    entries = []
    for topic, entry in faq.items():
        question = _require(entry, "question", f"{source}: faq.{topic}")
        answer = _require(entry, "answer", f"{source}: faq.{topic}")
        entries.append(FaqEntry(topic, " ".join(question.split()), " ".join(answer.split())))
    return StoreKnowledge(store=store, persona=persona, faq=tuple(entries))


@functools.lru_cache(maxsize=4)
def load(path: Path = DEFAULT_STORE_FACTS) -> StoreKnowledge:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(f"No store facts at {path}; set STORE_FACTS_PATH to the file.") from None
    return parse(data, str(path))


def render_faq_domain(knowledge: StoreKnowledge) -> str:
    header = (
        "# GENERATED from knowledge/store.yml by `make faq-responses`; edit that file, not this one.\n"
    )
    body = yaml.safe_dump(knowledge.faq_domain(), sort_keys=False, allow_unicode=True, width=10_000)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ridgeline.knowledge", description=__doc__)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--facts", type=Path, default=DEFAULT_STORE_FACTS)
    parser.add_argument("--domain-file", type=Path, default=FAQ_DOMAIN_FILE)
    args = parser.parse_args(argv)
    try:
        expected = render_faq_domain(load(args.facts))
    except KnowledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "write":
        args.domain_file.parent.mkdir(parents=True, exist_ok=True)
        if not args.domain_file.exists() or args.domain_file.read_text(encoding="utf-8") != expected:
            args.domain_file.write_text(expected, encoding="utf-8")
            print(f"wrote {args.domain_file}")
        return 0
    if not args.domain_file.exists() or args.domain_file.read_text(encoding="utf-8") != expected:
        print(
            f"{args.domain_file} is out of date with {args.facts}; run `make faq-responses`.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
