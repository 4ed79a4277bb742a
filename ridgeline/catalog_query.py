"""What a visitor asks of the catalog: a category, a brand and numeric limits, read from their words.

``ENTITY_PATTERNS`` are the regular expressions of the numeric entities (``max_price``,
``persons``, ``temperature``, ``weight``, ``volume``), written once: Rasa's regex featurizer and
entity extractor get them verbatim through the generated ``rasa_project/data/nlu/catalog.yml``
(``python -m ridgeline.catalog_nlu write``), and ``parse_constraints`` turns the same spans into
numbers. The patterns need no flags other than ignoring case, which Rasa's extractor does
(``case_sensitive: false``) and this module does too.

``Constraints.satisfied_by`` is the one rule for "this product satisfies what was asked", used by
the product search, its evaluation and the fine-tuning data.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, fields, replace
from typing import Iterable

from ridgeline.catalog import CATEGORIES, Product

_NUMBER = r"\d+(?:[.,]\d+)?"
_WORD_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "solo": 1, "single": 1, "couple": 2, "pair": 2,
}
_SMALL = r"(?:\d+|one|two|three|four|five|six|seven|eight|solo|single)"

ENTITY_PATTERNS: dict[str, str] = {
    # £200, € 150, 200 pounds, 150 quid, GBP 120, 99.95 euros, under 200 gbp
    "max_price": (
        r"(?:[£€]\s?" + _NUMBER + r"|(?:gbp|eur)\s?" + _NUMBER
        + r"|" + _NUMBER + r"\s?(?:£|€|gbp|eur|pounds?|quid|euros?)(?![a-z]))"
    ),
    # 2-person, two man, 3 people, for 4 persons, solo, family of four, sleeps 3
    "persons": (
        r"(?:" + _SMALL + r"[\s-]?(?:person|persons|people|man|men|berth|p)(?![a-z])"
        r"|(?:family of|sleeps|sleeping)\s" + _SMALL + r"(?:\s(?:people|persons|of us|adults))?(?![a-z0-9])"
        # "for two people", "a tent for 2?": "for 5 days" and "for 0 degrees" are not persons
        r"|for\s" + _SMALL + r"(?:\s(?:people|persons|of us|adults))?(?![a-z0-9])"
        r"(?!\s?(?:days?|nights?|weeks?|hours?|months?|years?|mins?|minutes?|degrees?|°|c\b|kgs?\b|kilos?|"
        r"g\b|grams?|l\b|lit|ltr|pounds?|quid|euros?|%|x\b))"
        r"|solo)"
    ),
    # -10 °C, minus 5 degrees, −10C, 0 degrees, minus ten
    "temperature": (
        r"(?<![a-z0-9])(?:(?:minus\s?|-\s?|−\s?|–\s?)(?:\d+|five|ten|fifteen|twenty)(?:\s?(?:°\s?c?|degrees?(?:\s?c(?:elsius)?)?|c(?![a-z])))?"
        r"|\+?\d+\s?(?:°\s?c?|degrees?(?:\s?c(?:elsius)?)?|celsius))"
    ),
    # 1.5 kg, 900 g, 2 kilos, 800 grams
    "weight": r"" + _NUMBER + r"\s?(?:kg|kgs|kilos?|kilograms?|g|grams?|gr)(?![a-z])",
    # 40 litres, 30l, 65 liter
    "volume": r"" + _NUMBER + r"\+?\s?(?:l|ltr|litres?|liters?)(?![a-z])",
}

_COMPILED = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in ENTITY_PATTERNS.items()}
# 20,000 mm, 10000mm, a 10k rating, 10k hydrostatic head
_WATERPROOF = re.compile(r"(\d[\d,]*)\s?mm(?![a-z])|(\d+)\s?k\b(?=[^.?!]{0,20}(?:rating|mm|head|hh|waterproof))",
                         re.IGNORECASE)
IN_STOCK = re.compile(r"\b(?:in stock|available (?:now|today|to buy)|(?:can |to )?(?:order|buy|ship) (?:it |them )?"
                       r"(?:now|today)|ships? (?:now|today)|not sold out|not back-?ordered)\b", re.IGNORECASE)
_FREEZING = re.compile(r"\b(?:freezing|zero degrees)\b", re.IGNORECASE)
_AT_LEAST = re.compile(r"(?:at least|min(?:imum)?|over|above|more than|bigger than|larger than|\+)\s*$",
                       re.IGNORECASE)
_AT_MOST = re.compile(r"(?:under|below|less than|at most|max(?:imum)?|up to|no more than|lighter than|"
                      r"smaller than|cheaper than|within|budget(?: of| is)?|not over|nothing over|"
                      r"not more than|tops)\s*$", re.IGNORECASE)
# after the number: "2 litres or more", "40+ l", "£200 max", "1 kg or less"
_AT_LEAST_AFTER = re.compile(r"^\s*(?:\+|or more|or bigger|or larger|plus|and up|minimum|min\b)", re.IGNORECASE)
_AT_MOST_AFTER = re.compile(r"^\s*(?:or less|or under|or lighter|or cheaper|max\b|maximum|tops|at most)",
                            re.IGNORECASE)
# "30-40 litres", "60-65l", "£100-150": a range (the span matched is the upper end)
_RANGE_BEFORE = re.compile(r"(\d+(?:[.,]\d+)?)\s?(?:-|–|to)\s?$", re.IGNORECASE)

_SUFFIXES = sorted(("ations", "ation", "ings", "ing", "edly", "ed", "iers", "ier", "ies", "ers", "er", "est",
                    "es", "ly", "s", "y", "e"), key=len, reverse=True)
_TOKEN = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A light English stemmer, the same for the catalog and the question: "tents" finds "tent",
    "hiking" finds "hike", "purifier" finds "purify". Crude, but crude the same way on both sides."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case stemmed words: what the search compares."""
    return [stem(t) for t in _TOKEN.findall(text.lower())]


@dataclass(frozen=True)
class Constraints:
    """Hard limits on the products to show; ``None`` where nothing was asked."""

    category: str | None = None
    brand: str | None = None
    max_price_gbp: float | None = None
    max_price_eur: float | None = None
    persons: int | None = None
    min_persons: int | None = None
    max_temp_comfort_c: float | None = None
    max_weight_g: float | None = None
    min_volume_l: float | None = None
    max_volume_l: float | None = None
    min_waterproof_mm: int | None = None
    in_stock: bool | None = None

    def satisfied_by(self, product: Product) -> bool:
        """Whether ``product`` meets every limit; an attribute the product lacks fails its limit."""
        checks = (
            (self.category, lambda: product.category == self.category),
            (self.brand, lambda: product.brand.lower() == self.brand.lower()),
            (self.max_price_gbp, lambda: product.price_gbp <= self.max_price_gbp),
            (self.max_price_eur, lambda: product.price_eur <= self.max_price_eur),
            (self.persons, lambda: product.capacity_persons == self.persons),
            (self.min_persons, lambda: (product.capacity_persons or 0) >= self.min_persons),
            (self.max_temp_comfort_c, lambda: product.temp_comfort_c is not None
             and product.temp_comfort_c <= self.max_temp_comfort_c),
            (self.max_weight_g, lambda: product.weight_g is not None and product.weight_g <= self.max_weight_g),
            (self.min_volume_l, lambda: product.volume_l is not None and product.volume_l >= self.min_volume_l),
            (self.max_volume_l, lambda: product.volume_l is not None and product.volume_l <= self.max_volume_l),
            (self.min_waterproof_mm, lambda: product.waterproof_mm is not None
             and product.waterproof_mm >= self.min_waterproof_mm),
            (self.in_stock, lambda: product.in_stock),
        )
        return all(check() for value, check in checks if value is not None and value is not False)

    def limits(self) -> dict[str, object]:
        """The limits that are set, by field name (for the slot, the log and the tests)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None and value is not False}

    def numeric_limits(self) -> list[str]:
        """The names of the set limits that a near match may relax (all but category and brand)."""
        return [name for name in self.limits() if name not in ("category", "brand")]

    def without(self, *names: str) -> "Constraints":
        return replace(self, **{name: None for name in names})

    def refined_by(self, newer: "Constraints") -> "Constraints":
        """These limits with ``newer``'s set ones on top: a follow-up refines the last search."""
        return replace(self, **newer.limits())

    @classmethod
    def from_limits(cls, limits: dict[str, object] | None) -> "Constraints":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (limits or {}).items() if k in known})


def category_words(category_name: str) -> set[str]:
    category = CATEGORIES[category_name]
    return {category.name.replace("_", " "), category.label, category.plural, *category.synonyms}


@functools.lru_cache(maxsize=1)
def _category_phrases() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Every category word, stemmed once: (its stemmed tokens, the category)."""
    return tuple((tuple(tokens(word)), name) for name in CATEGORIES for word in category_words(name) if tokens(word))


@functools.lru_cache(maxsize=None)
def category_stems(category_name: str) -> frozenset[str]:
    """The stemmed tokens of a category's words: "pack" and "rucksack" for backpack."""
    return frozenset(t for phrase, name in _category_phrases() if name == category_name for t in phrase)


# Where one thing asked for ends: "backpacking stove | under 100 g", "ice axe | for winter walking".
PHRASE_END = re.compile(r"[,.;:!?()/+]|\b(?:for|with|to|that|which|under|below|in|on|at|from|and|or|so|but|"
                        r"because|if|when|than|of)\b", re.IGNORECASE)


def find_category(text: str) -> str | None:
    """The category a text names, compared word by word after stemming ("air mattresses" finds
    "air mattress"). In the first phrase that names one, the last name wins, as English puts the
    thing after the words describing it ("backpacking stove" is a stove), and of names ending
    on the same word the longest ("sleeping bag", not "bag")."""
    for phrase in PHRASE_END.split(text):
        said = tokens(phrase)
        best: tuple[int, int, str] | None = None
        for wanted, name in _category_phrases():
            for start in range(len(said) - len(wanted) + 1):
                if said[start:start + len(wanted)] == list(wanted):
                    key = (start + len(wanted), len(wanted), name)
                    best = key if best is None or key[:2] > best[:2] else best
        if best:
            return best[2]
    return None


def find_brand(text: str, brands: Iterable[str]) -> str | None:
    lowered = text.lower()
    for brand in sorted(brands, key=len, reverse=True):
        if re.search(rf"(?<![a-z]){re.escape(brand.lower())}(?![a-z])", lowered):
            return brand
    return None


_NUMBER_WORDS = {
    "a hundred": "100", "one hundred": "100", "two hundred": "200", "three hundred": "300", "fifty": "50",
    "forty": "40", "thirty": "30", "twenty": "20", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "a kilo": "1 kilo", "a kg": "1 kg", "a litre": "1 litre", "a liter": "1 liter", "half a kilo": "500 g",
}
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")\b",
                          re.IGNORECASE)


def parse_constraints(text: str, *, brands: Iterable[str] = (), category: str | None = None) -> Constraints:
    """The limits a visitor's message states. ``category`` (e.g. Rasa's entity) wins over the text's."""
    text = _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(0).lower()], text)  # "under fifty pounds"
    values: dict[str, object] = {
        "category": category if category in CATEGORIES else find_category(text),
        "brand": find_brand(text, brands),
    }
    for match in _COMPILED["max_price"].finditer(text):
        if _before(text, match, _AT_LEAST) and not _before(text, match, _AT_MOST):
            continue  # "over £100": a floor on price is not a limit this search keeps
        amount = _amount(match.group(0))
        currency = "EUR" if re.search(r"€|eur", match.group(0), re.IGNORECASE) else "GBP"
        values["max_price_eur" if currency == "EUR" else "max_price_gbp"] = amount
    persons = _COMPILED["persons"].search(text)
    if persons:
        count = _count(persons.group(0))
        if count:
            at_least = _before(text, persons, _AT_LEAST) or re.search(r"family|at least", persons.group(0), re.I)
            values["min_persons" if at_least else "persons"] = count
    temperature = _COMPILED["temperature"].search(text)
    if temperature:
        values["max_temp_comfort_c"] = _temperature(temperature.group(0))
    elif _FREEZING.search(text):
        values["max_temp_comfort_c"] = 0.0
    weight = _COMPILED["weight"].search(text)
    if weight and not _after(text, weight, _AT_LEAST_AFTER):
        grams = _amount(weight.group(0)) * (1000 if re.search(r"k", weight.group(0), re.I) else 1)
        values["max_weight_g"] = grams
    volume = _COMPILED["volume"].search(text)
    if volume:
        litres = _amount(volume.group(0))
        low = _RANGE_BEFORE.search(text[:volume.start()])
        if low:
            values["min_volume_l"], values["max_volume_l"] = _amount(low.group(1)), litres
        elif _before(text, volume, _AT_LEAST) or _after(text, volume, _AT_LEAST_AFTER) or "+" in volume.group(0):
            values["min_volume_l"] = litres
        elif _before(text, volume, _AT_MOST) or _after(text, volume, _AT_MOST_AFTER):
            values["max_volume_l"] = litres
        else:  # "a 40 litre pack": about that size
            values["min_volume_l"], values["max_volume_l"] = round(litres * 0.8, 1), round(litres * 1.2, 1)
    waterproof = _WATERPROOF.search(text)
    if waterproof:
        values["min_waterproof_mm"] = (int(waterproof.group(1).replace(",", "")) if waterproof.group(1)
                                       else int(waterproof.group(2)) * 1000)
    if IN_STOCK.search(text):
        values["in_stock"] = True
    return Constraints(**{k: v for k, v in values.items() if v is not None})


def _before(text: str, match: re.Match, words: re.Pattern) -> bool:
    return words.search(text[max(0, match.start() - 24):match.start()]) is not None


def _after(text: str, match: re.Match, words: re.Pattern) -> bool:
    return words.search(text[match.end():match.end() + 16]) is not None


def _amount(span: str) -> float:
    number = re.search(_NUMBER, span)
    return float(number.group(0).replace(",", ".")) if number else 0.0


def _count(span: str) -> int | None:
    digits = re.search(r"\d+", span)
    if digits:
        return int(digits.group(0))
    for word, value in _WORD_NUMBERS.items():
        if re.search(rf"(?<![a-z]){word}(?![a-z])", span, re.IGNORECASE):
            return value
    return None


def _temperature(span: str) -> float:
    negative = re.search(r"minus|-|−|–", span, re.IGNORECASE) is not None
    value = _count(span) or 0
    return float(-value if negative else value)
