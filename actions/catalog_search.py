"""Product search over the catalog: hard filters for what was asked, BM25 for the words.

A visitor's message becomes ``Constraints`` (``ridgeline.catalog_query``: category, brand,
price, persons, temperature, weight, volume, waterproofing, stock); every product shown meets
all of them. The products that do are ranked by the message's remaining words with BM25
(``bm25s``, chosen by measurement over SQLite FTS5: ``python -m tools.bench.retrieval``,
docs/benchmarks.md), in stock first. Nothing meets them: the nearest matches, with the limit
that had to go named. A thing the catalog has no word for ("kayaks"): ``not_carried``.

``CatalogSearch.current(config)`` is the process's index, rebuilt when the catalog changes (the
file is checked every ``CATALOG_REFRESH_S`` seconds and loaded into the store database).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import bm25s
import numpy as np

from ridgeline.catalog import CATEGORIES, Product
from ridgeline.catalog_query import (ENTITY_PATTERNS, IN_STOCK, PHRASE_END, Constraints, category_stems,
                                     parse_constraints, stem, tokens)

logger = logging.getLogger(__name__)

# Words of a product question that name no product: the question's frame, not what is asked for.
GENERIC_WORDS = frozenset("""
a about after also am an and any anything are around as at available be best buy by can carry
cheap cheaper cheapest could do does for from get give good got have hello hey hi how i i'd i'm
in is it item items kind looking me mine more most my need no of on one ones or our please
product products recommend sale sell selling sells should show similar so some something
sort stock stocked store suggest than that the them there these they thing things this to
under up us want what whats which will with would you your yours over below less than budget
max maximum minimum least price prices priced cost costs pound pounds quid euro euros gbp eur
person persons people man men degree degrees kg g gram grams kilo kilos litre litres liter liters l
mm pair new range options option offer offering model models type types shop online stuff gear
equipment kit decent nice great really just very too much many please thanks thank cheers
actually order now going planning thinking need needs needed looking look find finding options
ones each all other another own use using used go get getting im ive id u ya wanna gonna
weigh weighs weighing weight delivered deliver delivery wear wearing make fit fits next
""".split())


_TOKEN = re.compile(r"[a-z0-9]+")
_CONSTRAINT_SPANS = re.compile("|".join(f"(?:{p})" for p in ENTITY_PATTERNS.values()), re.IGNORECASE)
_SKU_WORD = re.compile(r"\bro-\d{5}\b", re.IGNORECASE)


def product_text(product: Product) -> str:
    """What BM25 indexes of a product: name, brand, its category's words, the description."""
    category = CATEGORIES[product.category]
    return " ".join([product.name, product.brand, category.label, category.plural,
                     *category.synonyms, product.description])


def content_words(text: str) -> list[str]:
    """The words of a question that say what is wanted: no constraint spans, no frame words."""
    text = _SKU_WORD.sub(" ", IN_STOCK.sub(" ", _CONSTRAINT_SPANS.sub(" ", text)))
    words = _TOKEN.findall(text.lower())
    return [w for w in words if w not in GENERIC_WORDS and not w.isdigit() and len(w) > 1]


@dataclass
class SearchResult:
    products: list[Product]
    constraints: Constraints
    relaxed: tuple[str, ...] = ()           # limits dropped to find the nearest matches
    not_carried: tuple[str, ...] = ()       # the words for something the store does not sell
    matched: int = 0                        # products meeting every limit


class CatalogIndex:
    """The catalog's products with a BM25 index of their text (built once per catalog version)."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = list(products)
        self.by_sku = {p.sku: p for p in self.products}
        self.brands = sorted({p.brand for p in self.products})
        corpus = [tokens(product_text(p)) for p in self.products]
        self._words = [frozenset(doc) for doc in corpus]
        self.vocabulary = frozenset(t for doc in corpus for t in doc)
        self._retriever = bm25s.BM25()
        if corpus:
            self._retriever.index(corpus, show_progress=False)

    def scores(self, words: Iterable[str]) -> np.ndarray:
        """BM25 score of every product (catalog order) for these (unstemmed) words."""
        query = [stem(w) for w in words if stem(w) in self.vocabulary]
        if not query or not self.products:
            return np.zeros(len(self.products))
        return np.asarray(self._retriever.get_scores(query), dtype=float)

    # -- the search ------------------------------------------------------------------------------

    def search(self, text: str, *, category: str | None = None, previous: Constraints | None = None,
               exclude: Iterable[str] = (), k: int = 3) -> SearchResult:
        """The top ``k`` products for a visitor's message (refining ``previous`` when given)."""
        asked = parse_constraints(text, brands=self.brands, category=category)
        constraints = previous.refined_by(asked) if previous else asked
        constraints = self.applicable(constraints)
        words = [w for w in content_words(text) if not self._names_category_or_brand(w, constraints)]
        if previous is None:
            not_carried = self.not_carried(text, constraints, words)
            if not_carried:
                return SearchResult([], constraints, not_carried=not_carried)
        scores = self.scores(words)
        skipped = set(exclude)
        matching = [i for i, p in enumerate(self.products) if constraints.satisfied_by(p) and p.sku not in skipped]
        if words and constraints.category is None and constraints.brand is None:
            # nothing but words to go on: only products the words find
            matching = [i for i in matching if scores[i] > 0]
        if matching:
            chosen = self._ordered(matching, scores, text)[:k]
            return SearchResult([self.products[i] for i in chosen], constraints, matched=len(matching))
        return self._nearest(constraints, scores, text, skipped, k)

    def not_carried(self, text: str, constraints: Constraints, words: list[str]) -> tuple[str, ...]:
        """The words for what was asked when it is something the store does not sell, else ``()``.

        Unsold: the first thing the message asks for ends in a word no product's text has ("an
        ice axe for ...", "crampons to fit my boots", "a tent peg hammer"); or, when no category or
        brand is named, most of its words are unknown. A limit only some categories have (persons,
        temperature, volume, waterproofing) says it is about a kind the store sells.
        """
        if {"persons", "min_persons", "max_temp_comfort_c", "min_volume_l", "max_volume_l",
                "min_waterproof_mm"} & set(constraints.limits()):
            return ()
        first = content_words(PHRASE_END.split(text, maxsplit=1)[0])
        head = first[-1] if first else None
        if head and stem(head) not in self.vocabulary and not self._names_category_or_brand(head, constraints):
            return tuple(first)
        if constraints.category is None and constraints.brand is None:
            unknown = [w for w in words if stem(w) not in self.vocabulary]
            if unknown and len(unknown) * 2 >= len(words):
                return tuple(words)
        return ()

    def sources(self, text: str, context: str | None = None, k: int = 3) -> list[Product]:
        """The products to give the LLM with an open question: those of the category the question
        (or, failing that, the message before it) names that meet its limits, best by the words of
        both; with no category, only products the words find. None for a question about nothing
        the catalog has."""
        constraints = self.applicable(parse_constraints(text, brands=self.brands))
        if constraints.category is None and context:
            constraints = self.applicable(parse_constraints(context, brands=self.brands).refined_by(constraints))
        words = content_words(text) + content_words(context or "")
        scores = self.scores(words)
        pool = [i for i, p in enumerate(self.products) if constraints.satisfied_by(p)]
        if constraints.category is None and constraints.brand is None:
            # only products the question's words describe: two of its words at least ("feet" and
            # "dry" find boots; "long" alone, in "a long hike", does not make a sleeping pad relevant)
            asked = {stem(w) for w in words}
            needed = min(2, len(asked))
            pool = [i for i in pool if scores[i] > 0 and len(asked & self._words[i]) >= needed]
        pool.sort(key=lambda i: (-round(float(scores[i]), 3), not self.products[i].in_stock, self.products[i].price_gbp))
        return [self.products[i] for i in pool[:k]]

    def more_like(self, sku: str, k: int = 3) -> SearchResult:
        """Products of the same category most like ``sku`` (its words, then its price)."""
        product = self.by_sku[sku]
        scores = self.scores(_TOKEN.findall(f"{product.name} {product.description}".lower()))
        same = [i for i, p in enumerate(self.products) if p.category == product.category and p.sku != sku]
        same.sort(key=lambda i: (not self.products[i].in_stock, -round(scores[i], 3),
                                 abs(self.products[i].price_gbp - product.price_gbp)))
        constraints = Constraints(category=product.category)
        return SearchResult([self.products[i] for i in same[:k]], constraints, matched=len(same))

    def applicable(self, constraints: Constraints) -> Constraints:
        """Drop limits no product of the asked category has the attribute for ("2 nights" is not
        a capacity for a sleeping bag)."""
        if constraints.category is None:
            return constraints
        pool = [p for p in self.products if p.category == constraints.category]
        attribute_of = {"persons": "capacity_persons", "min_persons": "capacity_persons",
                        "max_temp_comfort_c": "temp_comfort_c", "max_weight_g": "weight_g",
                        "min_volume_l": "volume_l", "max_volume_l": "volume_l",
                        "min_waterproof_mm": "waterproof_mm"}
        missing = [limit for limit, attribute in attribute_of.items()
                   if getattr(constraints, limit) is not None and all(getattr(p, attribute) is None for p in pool)]
        return constraints.without(*missing) if missing else constraints

    def _names_category_or_brand(self, word: str, constraints: Constraints) -> bool:
        if constraints.category and stem(word) in category_stems(constraints.category):
            return True
        return bool(constraints.brand) and stem(word) in tokens(constraints.brand)

    def _ordered(self, indices: list[int], scores: np.ndarray, text: str) -> list[int]:
        """In stock first, then the words' score, then what the message asks to favour (lightest,
        warmest, biggest), then the lowest price."""
        favour = _favour(text)
        return sorted(indices, key=lambda i: (not self.products[i].in_stock, -round(float(scores[i]), 3),
                                              favour(self.products[i]), self.products[i].price_gbp))

    def _nearest(self, constraints: Constraints, scores: np.ndarray, text: str, skipped: set[str],
                 k: int) -> SearchResult:
        """Nothing meets every limit: drop the fewest limits (the least important first) and show
        the products closest to what was asked."""
        for limit in _RELAX_ORDER:
            if getattr(constraints, limit) is None:
                continue
            relaxed = constraints.without(limit)
            pool = [i for i, p in enumerate(self.products) if relaxed.satisfied_by(p) and p.sku not in skipped]
            if pool:
                closeness = _CLOSEST[limit]
                pool.sort(key=lambda i: (not self.products[i].in_stock, closeness(self.products[i]),
                                         -float(scores[i]), self.products[i].price_gbp))
                return SearchResult([self.products[i] for i in pool[:k]], constraints, relaxed=(limit,))
        if constraints.category:  # several limits at once: the category's best by the words, then price
            pool = [i for i, p in enumerate(self.products) if p.category == constraints.category and p.sku not in skipped]
            return SearchResult([self.products[i] for i in self._ordered(pool, scores, text)[:k]], constraints,
                                relaxed=tuple(constraints.numeric_limits()))
        return SearchResult([], constraints, relaxed=tuple(constraints.numeric_limits()))


# The order in which a search with no match gives up a limit, and how "close" is measured then.
_RELAX_ORDER = ("in_stock", "max_price_gbp", "max_price_eur", "max_weight_g", "min_waterproof_mm",
                "max_volume_l", "min_volume_l", "max_temp_comfort_c", "persons", "min_persons", "brand")
_BIG = 1e9
_CLOSEST: dict[str, Callable[[Product], float]] = {
    "in_stock": lambda p: 0.0,
    "max_price_gbp": lambda p: p.price_gbp,
    "max_price_eur": lambda p: p.price_eur,
    "max_weight_g": lambda p: p.weight_g if p.weight_g is not None else _BIG,
    "min_waterproof_mm": lambda p: -(p.waterproof_mm or 0),
    "max_volume_l": lambda p: p.volume_l if p.volume_l is not None else _BIG,
    "min_volume_l": lambda p: -(p.volume_l or 0),
    "max_temp_comfort_c": lambda p: p.temp_comfort_c if p.temp_comfort_c is not None else _BIG,
    "persons": lambda p: 0.0,
    "min_persons": lambda p: -(p.capacity_persons or 0),
    "brand": lambda p: 0.0,
}


def _favour(text: str) -> Callable[[Product], float]:
    lowered = text.lower()
    if re.search(r"\b(?:light|lighter|lightest|lightweight|ultralight|ultra-light)\b", lowered):
        return lambda p: p.weight_g if p.weight_g is not None else _BIG
    if re.search(r"\b(?:warm|warmer|warmest|cold|winter|freezing)\b", lowered):
        return lambda p: p.temp_comfort_c if p.temp_comfort_c is not None else _BIG
    if re.search(r"\b(?:big|bigger|biggest|large|larger|largest|roomy|spacious)\b", lowered):
        return lambda p: -((p.volume_l or 0) + (p.capacity_persons or 0))
    return lambda p: 0.0


@dataclass
class CatalogSearch:
    """The process's catalog index: the database's products, reloaded when the file changes."""

    load: Callable[[], list[Product] | None]      # products when they changed since the last call, else None
    refresh_s: float = 60.0
    _index: CatalogIndex | None = None
    _checked: float = field(default=-1e18)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def index(self) -> CatalogIndex:
        with self._lock:
            now = time.monotonic()
            if self._index is None or now - self._checked >= self.refresh_s:
                self._checked = now
                try:
                    products = self.load()
                except Exception:
                    if self._index is None:
                        raise
                    logger.exception("the catalog could not be refreshed; searching the products loaded before")
                    products = None
                if products is not None or self._index is None:
                    self._index = CatalogIndex(products or [])
            return self._index
