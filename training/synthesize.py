"""``python -m training synthesize``: grounded training conversations from the store's catalog and facts.

    python -m training synthesize --output var/synth --conversations 2000
    python -m training prepare --input var/synth/train.jsonl data/conversations/ --output var/dataset

Each conversation is what the action server sends the LLM: the store's system prompt, then 1-3 visitor
messages, each with the sources retrieved for it (``ridgeline.catalog.with_sources``: 2-4 products
of one category, the answering ones among plausible distractors), and the replies the model should
learn: they cite SKUs and quote prices exactly as the sources write them, compare products ("850 g
lighter"), answer follow-ups ("anything cheaper?") from that turn's sources, and decline plainly,
pointing to the support email, when the answer is not in the sources (at least 15% of the questions).
Every reply passes ``ridgeline.grounding.check_grounding`` against its own sources. Writes
``train.jsonl`` and ``validation.jsonl`` (split by conversation, seeded; the validation file is what
``evaluate --grounding`` scores) and a README.md with the counts.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ridgeline import knowledge
from ridgeline.catalog import CATEGORIES, CatalogError, Product, attributes, money, read_catalog, with_sources
from ridgeline.grounding import check_grounding
from ridgeline.paths import CATALOG_FILE, STORE_FACTS
from training.config import ConfigError, parse

logger = logging.getLogger(__name__)

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
README_FILE = "README.md"

# Things an outdoor-gear visitor may ask for that the store does not sell.
NOT_SOLD = ("kayaks", "bicycles", "fishing rods", "skis", "snowboards", "surfboards", "golf clubs", "drones",
            "e-bikes", "paddle boards", "climbing ropes for rescue teams", "horse saddles")


@dataclass
class SynthesizeArgs:
    """``python -m training synthesize``: grounded conversations from the catalog and the store facts."""

    output: str = field(metadata={"help": "Folder to write train.jsonl, validation.jsonl and README.md to; "
                                  "feed train.jsonl to `python -m training prepare --input`."})
    catalog: str = field(default=str(CATALOG_FILE), metadata={"help": "The store's catalog CSV."})
    store_facts: str = field(
        default=str(STORE_FACTS),
        metadata={"help": "The store facts file the action server uses (STORE_FACTS_PATH): the system prompt "
                  "and the support email of the declines."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the questions, the sources and the split."})
    conversations: int = field(default=1000, metadata={"help": "How many distinct conversations to write."})
    validation_share: float = field(default=0.1, metadata={"help": "Share of conversations held out for "
                                                           "validation (`evaluate --grounding`)."})

    def __post_init__(self) -> None:
        if self.conversations < 1:
            raise ConfigError(f"--conversations must be 1 or more, got {self.conversations}.")
        if not 0 <= self.validation_share < 1:
            raise ConfigError(f"--validation-share must be at least 0 and below 1 (e.g. 0.1), got "
                              f"{self.validation_share}.")


@dataclass
class Turn:
    """One visitor question with its sources and the reply to learn; ``declined`` when the answer is absent."""

    kind: str
    question: str
    sources: list[Product]
    answer: str
    declined: bool = False
    focus: Product | None = None  # the product a follow-up ("is it in stock?") refers to


def _a(label: str) -> str:
    return f"an {label}" if label[:1] in "aeiou" else f"a {label}"


def gbp(product: Product) -> str:
    return money(product.price_gbp, "GBP")


def eur(product: Product) -> str:
    return money(product.price_eur, "EUR")


def facts(product: Product) -> str:
    """``sleeps 2, 1,250 g, in stock``: the source's attributes as a reply repeats them."""
    return ", ".join([*attributes(product), "in stock" if product.in_stock else "out of stock"])


def cited(product: Product) -> str:
    return f"the {product.name} ({product.sku})"


def offer(product: Product) -> str:
    """``the Ridgeline Trailhead 2 (RO-10002) at £189.00, sleeps 2, 1,350 g, in stock``.

    No bracket after the price: ``prepare``'s redaction reads ``£129.00 (420`` as a phone number.
    """
    return f"{cited(product)} at {gbp(product)}, {facts(product)}"


class Synthesizer:
    """Seeded conversations over one catalog and one set of store facts."""

    def __init__(self, catalog: Sequence[Product], store_facts: knowledge.StoreKnowledge, rng: random.Random) -> None:
        self.catalog = list(catalog)
        self.rng = rng
        self.store = store_facts.store_name
        self.email = store_facts.store["support_email"]
        self.system_prompt = store_facts.system_prompt()
        self.by_category: dict[str, list[Product]] = {}
        for product in self.catalog:
            self.by_category.setdefault(product.category, []).append(product)
        self.first_kinds: list[tuple[Callable[[], Turn | None], int]] = [
            (self.recommend, 3), (self.need, 6), (self.price, 2), (self.stock, 1), (self.compare_weight, 2),
            (self.compare_price, 2), (self.not_sold, 2),
        ]
        self.follow_kinds: list[tuple[Callable[[Product], Turn | None], int]] = [
            (self.cheaper, 3), (self.stock_of_it, 1), (self.weight_of_it, 1), (self.in_euros, 1),
        ]

    # --- helpers ---------------------------------------------------------------------------------------

    def pick(self, options: Sequence[str], **values: object) -> str:
        return self.rng.choice(options).format(**values)

    def category(self, where: Callable[[Product], bool] = lambda p: True, least: int = 1) -> str | None:
        names = [name for name, products in self.by_category.items() if sum(map(where, products)) >= least]
        return self.rng.choice(sorted(names)) if names else None

    def sources(self, answering: Sequence[Product], category: str | None = None, total: int | None = None,
                ) -> list[Product]:
        """The answering products among distractors of their category: 2-4 products (fewer when the
        category has fewer), in a random order, as a retriever ranks them imperfectly."""
        category = category or answering[0].category
        pool = [p for p in self.by_category.get(category, []) if p not in answering]
        total = total or self.rng.randint(2, 4)
        chosen = list(answering) + self.rng.sample(pool, max(0, min(len(pool), total - len(answering))))
        self.rng.shuffle(chosen)
        return chosen

    def decline(self, what: str) -> str:
        return self.pick((
            "Sorry, we don't have {what} in our catalogue. If you'd like advice on an alternative, email us at "
            "{email}.",
            "I'm afraid our catalogue has no {what_plain}. Our team at {email} is happy to help you find "
            "something that works.",
            "Unfortunately we don't have {what}. For anything else, write to {email}.",
        ), what=what, what_plain=what.removeprefix("a ").removeprefix("an "), email=self.email)

    # --- first questions -------------------------------------------------------------------------------

    def recommend(self) -> Turn | None:
        name = self.category()
        if name is None:
            return None
        category = CATEGORIES[name]
        sources = self.sources([], name)
        best = sorted(sources, key=lambda p: (not p.in_stock, p.price_gbp))[:2]
        question = self.pick(("Which {plural} do you have?", "Can you recommend {a}?",
                              "I'm looking for {a}, what do you suggest?", "Show me your {plural}, please.",
                              "what {plural} do you sell"), plural=category.plural, a=_a(category.label))
        listed = "; and ".join(offer(p) for p in best)
        answer = self.pick(("We have {listed}.", "Good options are {listed}.", "I'd suggest {listed}."),
                           listed=listed)
        return Turn("recommend", question, sources, answer[0].upper() + answer[1:], focus=self.rng.choice(best))

    def need(self) -> Turn | None:
        """A question with a requirement (capacity, warmth, volume, waterproofing, budget); about a third
        ask for more than the whole catalog offers, and are declined."""
        checks = [
            ("capacity_persons", "tent", lambda p, n: p.capacity_persons >= n, max, 2,
             ("I need a tent that sleeps {n}.", "Do you have a tent for {n} people?", "tent for {n} persons?"),
             "a tent that sleeps {n}"),
            ("temp_comfort_c", "sleeping_bag", lambda p, t: p.temp_comfort_c <= t, min, -10,
             ("Which sleeping bag is warm enough for {n} °C nights?", "I need a bag with a comfort rating of {n} °C.",
              "sleeping bag for {n} degrees?"),
             "a sleeping bag rated for {n} °C"),
            ("volume_l", "backpack", lambda p, v: p.volume_l >= v, max, 20,
             ("I need a backpack of at least {n} litres.", "Do you have a {n} l rucksack?",
              "Which pack holds {n} litres or more?"),
             "a backpack of {n} litres or more"),
            ("waterproof_mm", "jacket", lambda p, w: p.waterproof_mm >= w, max, 20000,
             ("Is there a jacket waterproof to {n:,} mm?", "I want a rain jacket rated at least {n:,} mm.",
              "jacket with {n:,} mm hydrostatic head?"),
             "a jacket waterproof to {n:,} mm"),
        ]
        usable = [c for c in checks if any(getattr(p, c[0]) is not None for p in self.by_category.get(c[1], []))]
        if not usable or self.rng.random() < 0.3:
            return self.budget()
        column, name, fits, extreme, beyond, questions, wanted = self.rng.choice(usable)
        products = [p for p in self.by_category[name] if getattr(p, column) is not None]
        values = [getattr(p, column) for p in products]
        if self.rng.random() < 0.3:
            n = _whole(extreme(values) + beyond)
            question = self.pick(questions, n=n)
            return Turn("need_absent", question, self.sources([], name), self.decline(wanted.format(n=n)),
                        declined=True)
        target = self.rng.choice(products)
        n = _whole(getattr(target, column))
        matching = [p for p in products if fits(p, n)]
        sources = self.sources(self.rng.sample(matching, min(len(matching), 2)), name)
        shown = sorted((p for p in sources if p in matching), key=lambda p: p.price_gbp)
        listed = "; and ".join(offer(p) for p in shown)
        answer = self.pick(("That would be {listed}.", "These fit: {listed}.", "You could take {listed}."),
                           listed=listed)
        return Turn("need", self.pick(questions, n=n), sources, answer, focus=shown[0])

    def budget(self) -> Turn | None:
        name = self.category()
        if name is None:
            return None
        category = CATEGORIES[name]
        products = self.by_category[name]
        cheapest = min(p.price_gbp for p in products)
        questions = ("Do you have {a} under £{x}?", "Any {plural} for less than {x} pounds?",
                     "What's the best {label} under £{x}?", "my budget for {a} is {x} quid, what can I get?")
        x = max(5, int(cheapest * 0.5) // 5 * 5)
        if x < cheapest and self.rng.random() < 0.3:
            question = self.pick(questions, a=_a(category.label), plural=category.plural, label=category.label, x=x)
            answer = self.decline(f"{_a(category.label)} in that budget")
            return Turn("budget_absent", question, self.sources([], name), answer, declined=True)
        target = self.rng.choice(products)
        x = int(target.price_gbp // 10 + 1) * 10
        matching = [p for p in products if p.price_gbp <= x]
        sources = self.sources(self.rng.sample(matching, min(len(matching), 2)), name)
        shown = sorted((p for p in sources if p.price_gbp <= x), key=lambda p: p.price_gbp)
        question = self.pick(questions, a=_a(category.label), plural=category.plural, label=category.label, x=x)
        listed = "; and ".join(offer(p) for p in shown)
        answer = self.pick(("Within that budget there is {listed}.", "You can get {listed}."), listed=listed)
        return Turn("budget", question, sources, answer, focus=shown[0])

    def price(self) -> Turn | None:
        product = self.rng.choice(self.catalog)
        if self.rng.random() < 0.3:
            question = self.pick(("How much is the {name} in euros?", "What does the {name} cost in EUR?"),
                                 name=product.name)
            answer = f"{cited(product)[0].upper()}{cited(product)[1:]} costs {eur(product)}."
        else:
            question = self.pick(("How much is the {name}?", "What does the {name} cost?", "price of {name}?",
                                  "How much do you charge for the {name}?"), name=product.name)
            answer = self.pick(("The {name} ({sku}) costs {gbp} ({eur}).", "It's {gbp} ({eur}): the {name}, "
                                "{sku}, {facts}."), name=product.name, sku=product.sku, gbp=gbp(product),
                               eur=eur(product), facts=facts(product))
        return Turn("price", question, self.sources([product]), answer, focus=product)

    def stock(self) -> Turn | None:
        product = self.rng.choice(self.catalog)
        question = self.pick(("Is the {name} in stock?", "Can I order the {name} now?", "do you have the {name} "
                              "available?"), name=product.name)
        sources = self.sources([product])
        if product.in_stock:
            answer = f"Yes, {cited(product)} is in stock at {gbp(product)}."
        else:
            others = [p for p in sources if p.in_stock]
            answer = f"Sorry, {cited(product)} is out of stock at the moment."
            if others:
                answer += f" {cited(others[0])[0].upper()}{cited(others[0])[1:]} is in stock, at {gbp(others[0])}."
        return Turn("stock", question, sources, answer, focus=product)

    def _pair(self, column: str) -> tuple[Product, Product] | None:
        name = self.category(lambda p: getattr(p, column) is not None, least=2)
        if name is None:
            return None
        products = [p for p in self.by_category[name] if getattr(p, column) is not None]
        a, b = self.rng.sample(products, 2)
        return (a, b) if getattr(a, column) != getattr(b, column) else None

    def compare_weight(self) -> Turn | None:
        pair = self._pair("weight_g")
        if pair is None:
            return None
        a, b = pair
        light, heavy = sorted(pair, key=lambda p: p.weight_g)
        question = self.pick(("Which is lighter, the {a} or the {b}?", "Is the {a} lighter than the {b}?",
                              "How do the {a} and the {b} compare on weight?"), a=a.name, b=b.name)
        answer = (f"The {light.name} ({light.sku}, {light.weight_g:,} g) is {heavy.weight_g - light.weight_g:,} g "
                  f"lighter than the {heavy.name} ({heavy.sku}, {heavy.weight_g:,} g).")
        return Turn("compare_weight", question, self.sources([a, b]), answer, focus=light)

    def compare_price(self) -> Turn | None:
        pair = self._pair("price_gbp")
        if pair is None:
            return None
        a, b = pair
        cheap, dear = sorted(pair, key=lambda p: p.price_gbp)
        question = self.pick(("Which is cheaper, the {a} or the {b}?", "What's the price difference between the "
                              "{a} and the {b}?", "{a} vs {b}: which costs less?"), a=a.name, b=b.name)
        answer = (f"The {cheap.name} ({cheap.sku}) costs {gbp(cheap)} and the {dear.name} ({dear.sku}) "
                  f"{gbp(dear)}, so the {cheap.name} is {money(dear.price_gbp - cheap.price_gbp, 'GBP')} cheaper.")
        return Turn("compare_price", question, self.sources([a, b]), answer, focus=cheap)

    def not_sold(self) -> Turn:
        thing = self.rng.choice(NOT_SOLD)
        question = self.pick(("Do you sell {thing}?", "Have you got any {thing}?", "I'm looking for {thing}.",
                              "do you stock {thing}"), thing=thing)
        sources = [] if self.rng.random() < 0.5 else self.rng.sample(self.catalog, min(2, len(self.catalog)))
        return Turn("not_sold", question, sources, self.decline(thing), declined=True)

    # --- follow-ups --------------------------------------------------------------------------------------

    def cheaper(self, focus: Product) -> Turn:
        category = CATEGORIES[focus.category]
        question = self.pick(("Anything cheaper?", "Do you have something cheaper?", "Is there a cheaper one?",
                              "that's a bit much, anything for less?"))
        cheaper = sorted((p for p in self.by_category[focus.category] if p.price_gbp < focus.price_gbp),
                         key=lambda p: p.price_gbp)
        if not cheaper:
            answer = self.pick(("Sorry, there is no cheaper {label} in our catalogue.",
                                "I'm afraid we don't have a cheaper {label}. Our team at {email} can help "
                                "with other ideas."), label=category.label, email=self.email)
            return Turn("cheaper_absent", question, self.sources([focus]), answer, declined=True)
        shown = cheaper[:2]
        sources = self.sources([*shown, focus], total=len(shown) + 1)
        listed = "; and ".join(offer(p) for p in shown)
        answer = f"Yes: {listed}; against {gbp(focus)} for the {focus.name}."
        return Turn("cheaper", question, sources, answer, focus=shown[0])

    def stock_of_it(self, focus: Product) -> Turn:
        question = self.pick(("Is it in stock?", "Can I get it now?", "is that one available?"))
        state = "is in stock" if focus.in_stock else "is out of stock at the moment"
        return Turn("stock", question, self.sources([focus]), f"{cited(focus)[0].upper()}{cited(focus)[1:]} {state}.",
                    focus=focus)

    def weight_of_it(self, focus: Product) -> Turn | None:
        if focus.weight_g is None:
            return None
        question = self.pick(("How heavy is it?", "What does it weigh?", "and the weight?"))
        return Turn("weight", question, self.sources([focus]),
                    f"{cited(focus)[0].upper()}{cited(focus)[1:]} weighs {focus.weight_g:,} g.", focus=focus)

    def in_euros(self, focus: Product) -> Turn:
        question = self.pick(("What is that in euros?", "How much in EUR?", "I'm in Ireland, what's the price in "
                              "euros?"))
        return Turn("price", question, self.sources([focus]), f"{cited(focus)[0].upper()}{cited(focus)[1:]} costs "
                    f"{eur(focus)}.", focus=focus)

    # --- conversations -----------------------------------------------------------------------------------

    def _choose(self, kinds: list, *args) -> Turn:
        functions, weights = zip(*kinds)
        for _ in range(50):
            turn = self.rng.choices(functions, weights)[0](*args)
            if turn is not None:
                return turn
        return self.not_sold()

    def conversation(self) -> list[Turn]:
        turns = [self._choose(self.first_kinds)]
        for _ in range(self.rng.choice((0, 0, 1, 1, 2))):
            focus = turns[-1].focus
            if focus is not None and self.rng.random() < 0.7:
                turns.append(self._choose(self.follow_kinds, focus))
            else:
                turns.append(self._choose(self.first_kinds))
        return turns

    def messages(self, turns: list[Turn]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}]
        for turn in turns:
            messages.append({"role": "user", "content": with_sources(turn.question, turn.sources)})
            messages.append({"role": "assistant", "content": turn.answer})
        return messages

    def check(self, turn: Turn) -> None:
        """Refuse to write a reply that the grounding rule would refuse to send (a bug here, not in the data)."""
        verdict = check_grounding(turn.answer, turn.sources, self.catalog,
                                  allowed_text=f"{self.system_prompt}\n{turn.question}", store_name=self.store)
        if not verdict.ok:
            raise AssertionError(f"synthesized a reply that is not grounded ({verdict.reason}): {turn.answer!r}")


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def synthesize(args: SynthesizeArgs) -> dict:
    """Write the conversations and README.md; return the counts."""
    try:
        store_facts = knowledge.load(Path(args.store_facts))
    except knowledge.KnowledgeError as exc:
        raise ConfigError(f"--store-facts: {exc}") from None
    catalog = read_catalog(args.catalog)
    rng = random.Random(args.seed)
    synthesizer = Synthesizer(catalog, store_facts, rng)
    records, seen = [], set()
    for _ in range(args.conversations * 20):
        if len(records) == args.conversations:
            break
        turns = synthesizer.conversation()
        for turn in turns:
            synthesizer.check(turn)
        messages = synthesizer.messages(turns)
        key = json.dumps(messages[1:])
        if key in seen:
            continue
        seen.add(key)
        records.append({"messages": messages, "meta": {"kinds": [t.kind for t in turns],
                                                         "declined": [t.declined for t in turns]}})
    if len(records) < args.conversations:
        logger.warning("only %d distinct conversations can be made from %s; wrote those", len(records), args.catalog)
    order = list(range(len(records)))
    rng.shuffle(order)
    n_val = round(len(records) * args.validation_share)
    if args.validation_share and len(records) > 1:
        n_val = min(max(1, n_val), len(records) - 1)
    validation = [records[i] for i in sorted(order[:n_val])]
    train = [records[i] for i in sorted(order[n_val:])]
    questions = sum(len(r["meta"]["declined"]) for r in records)
    declined = sum(sum(r["meta"]["declined"]) for r in records)
    summary = {"conversations": len(records), "train": len(train), "validation": len(validation),
               "questions": questions, "declined": declined,
               "decline_share": round(declined / questions, 3) if questions else 0.0}
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name, rows in ((TRAIN_FILE, train), (VALIDATION_FILE, validation)):
        with open(output / name, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (output / README_FILE).write_text(_readme(args, summary), encoding="utf-8")
    return summary


def _readme(args: SynthesizeArgs, summary: dict) -> str:
    return (
        "# Synthesized grounded conversations\n\n"
        f"Written by `python -m training synthesize --catalog {args.catalog} --seed {args.seed} "
        f"--conversations {args.conversations} --validation-share {args.validation_share}`.\n\n"
        f"- conversations: {summary['train']} in {TRAIN_FILE}, {summary['validation']} in {VALIDATION_FILE}\n"
        f"- questions: {summary['questions']}, of which {summary['declined']} ({summary['decline_share']:.1%}) have "
        "no answer in their sources and are declined\n\n"
        f"Next: `python -m training prepare --input {Path(args.output) / TRAIN_FILE} --output var/dataset`; "
        f"score a model on {VALIDATION_FILE} with `python -m training evaluate --grounding`.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(SynthesizeArgs, argv, "python -m training synthesize", __doc__.split("\n\n")[0] + "\n\n"
                     + __doc__.split("\n\n")[1])
        summary = synthesize(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help, or argparse rejected a flag (it printed why)
        return exc.code if isinstance(exc.code, int) else 2
    print(f"Wrote {summary['train']} training and {summary['validation']} validation conversations to "
          f"{args.output} ({summary['questions']} questions, {summary['decline_share']:.1%} declined as not in "
          "their sources).")
    return 0
