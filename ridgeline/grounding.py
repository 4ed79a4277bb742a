"""Does a reply invent store facts? The one rule, for the action server and ``training evaluate --grounding``.

The LLM gets, with each visitor message, the products retrieved for it (``ridgeline.catalog.with_sources``)
and the store facts in its system prompt. A reply is *grounded* when every price, SKU and product it
names comes from those:

- a price (``£189``, ``EUR 219.00``, ``189 quid``: ``find_prices``) equals, to the penny, a source
  product's price in that currency, the difference of two of them (``£40.00 cheaper``), or a price
  written in ``allowed_text`` (the system prompt's shipping costs; the visitor's own budget);
- a SKU (``RO-10003``) is a source's SKU;
- a product named by its catalog name is a source, and a catalog brand followed by a model word
  (``Ridgeline Summit Pro``) continues the name of a source of that brand. The brand alone, its
  possessive (``Ridgeline's 5-year warranty``), the store's name and lower-case words after it
  (``Ridgeline gear``) name no product.

The rule is deliberately conservative: it looks only for shapes that cannot be innocent when they
are not in the sources, so ordinary grounded replies pass (tests/ridgeline/test_grounding.py holds
the cases). ``grounded_fallback`` is the reply to send instead of one that fails, and
``is_decline`` is what counts as declining ("we don't have that"), for the training data and its
evaluation.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable, Sequence

from ridgeline.catalog import SOURCES_HEADING, Product, attributes, money
from ridgeline.shapes import SKU

CURRENCIES = ("GBP", "EUR")

_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_BEFORE = r"(?<![\w.,])"      # not the tail of a longer number or word
_AFTER = r"(?![\d,]\d|\.\d|\w)"  # not the head of one (a sentence's full stop may follow)
_PRICE = re.compile(
    rf"(?P<sym>[£€])\s?(?P<a1>{_AMOUNT}){_AFTER}"
    rf"|{_BEFORE}(?P<code>GBP|EUR)\s?(?P<a2>{_AMOUNT}){_AFTER}"
    rf"|{_BEFORE}(?P<a3>{_AMOUNT})\s?(?P<unit>€|GBP\b|EUR\b|pounds?\b|quid\b|euros?\b)",
    re.IGNORECASE,
)
_UNITS = {"£": "GBP", "€": "EUR", "gbp": "GBP", "eur": "EUR", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
          "euro": "EUR", "euros": "EUR"}
_SKU = re.compile(SKU)
_CENT = Decimal("0.01")

# After a brand: a run of model words, each a capitalised word or a number that is not the head of
# "5-year" (a number and a hyphenated word describe, they do not name).
_MODEL_WORD = r"(?:[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|\d+(?:\.\d+)?[A-Za-z]*(?!-\w))(?!['’]\w)"

_DECLINE_PHRASES = re.compile(
    r"\b(?:do not|don't|does not|doesn't|did not|didn't|cannot|can't|could not|couldn't|unable to)\s+"
    r"(?:\w+\s+){0,2}?(?:have|sell|stock|carry|offer|find|see|list)\b"
    r"|\bnot (?:available|something we|in our (?:catalogue|catalog|range))\b"
    r"|\bno (?:\w+\s+){0,3}?(?:in our (?:catalogue|catalog|range)|that (?:we|I))\b"
    r"|\b(?:none|nothing) (?:of|in|that|which|we|I)\b"
    r"|\b(?:has|have) no\b|\bafraid\b|\bunfortunately\b|\bsorry\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Price:
    """A price as a reply writes it: ``text`` (``£1,299``), ``amount`` (``Decimal('1299.00')``), ``currency``."""

    amount: Decimal
    currency: str
    text: str


def find_prices(text: str) -> list[Price]:
    """Every amount with a currency in ``text``, in order: ``£189``, ``GBP 189``, ``189 pounds``, ``189 quid``,
    ``€219``, ``EUR 219.00``, ``219 euros``, ``219€``. A number without a currency is not a price."""
    prices = []
    for match in _PRICE.finditer(text):
        unit = match.group("sym") or match.group("code") or match.group("unit")
        raw = match.group("a1") or match.group("a2") or match.group("a3")
        try:
            amount = Decimal(raw.replace(",", "")).quantize(_CENT)
        except InvalidOperation:  # pragma: no cover - the pattern admits digits only
            continue
        prices.append(Price(amount, _UNITS[unit.lower()], match.group(0)))
    return prices


def find_skus(text: str) -> list[str]:
    """Every SKU (``RO-`` and five digits, ``ridgeline.shapes.SKU``) in ``text``, in order."""
    return _SKU.findall(text)


@dataclass(frozen=True)
class GroundingVerdict:
    """What ``check_grounding`` found; ``reason`` is one line for the log."""

    ok: bool
    invented_prices: tuple[str, ...] = ()
    invented_skus: tuple[str, ...] = ()
    invented_products: tuple[str, ...] = ()
    reason: str = "grounded"


def _price(product: Product, currency: str) -> Decimal:
    value = product.price_gbp if currency == "GBP" else product.price_eur
    return Decimal(str(value)).quantize(_CENT)


def _allowed_prices(sources: Sequence[Product], allowed_text: str) -> set[tuple[str, Decimal]]:
    allowed = {(price.currency, price.amount) for price in find_prices(allowed_text)}
    for currency in CURRENCIES:
        amounts = [_price(product, currency) for product in sources]
        allowed.update((currency, amount) for amount in amounts)
        allowed.update((currency, abs(a - b)) for a in amounts for b in amounts if a != b)
    return allowed


def _words(name: str) -> list[str]:
    return name.lower().split()


def _model_part(product: Product) -> str:
    """The name without its leading brand: ``Ridgeline Trailhead 2`` -> ``Trailhead 2``."""
    if product.name.lower().startswith(product.brand.lower() + " "):
        return product.name[len(product.brand):].strip()
    return product.name


@functools.lru_cache(maxsize=8)
def _name_pattern(catalog: tuple[Product, ...]) -> tuple[re.Pattern, dict[str, str]]:
    """One pattern finding every way the reply may name a catalog product, and spelling -> catalog name.

    Full names match in any case; a name without its brand (``Trailhead 2``) matches as written when
    it has two words or a digit (one plain word, ``Explorer``, could be ordinary English). At each
    place the longest name wins, so a source ``Trailhead 2 Plus`` is not read as ``Trailhead 2``.
    """
    patterns: dict[str, int] = {}  # pattern -> length of the spelling, for the longest-first order
    names: dict[str, str] = {}
    for product in catalog:
        patterns[f"(?i:{re.escape(product.name)})"] = len(product.name)
        names.setdefault(product.name.lower(), product.name)
        model = _model_part(product)
        if model != product.name and (len(model.split()) > 1 or any(c.isdigit() for c in model)):
            patterns[re.escape(model)] = len(model)
            names.setdefault(model.lower(), product.name)
    ordered = sorted(patterns, key=patterns.__getitem__, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(ordered) + r")(?![\w-]|['’]?\d)"), names


def _named_products(reply: str, sources: Sequence[Product], catalog: Sequence[Product]) -> list[str]:
    """Catalog names (see ``_name_pattern``) the reply uses for products that are not sources."""
    if not catalog:
        return []
    pattern, names = _name_pattern(tuple(catalog))
    source_names = {p.name.lower() for p in sources} | {_model_part(p).lower() for p in sources}
    return [names[match.group(0).lower()] for match in pattern.finditer(reply)
            if match.group(0).lower() not in source_names]


def _brand_models(reply: str, sources: Sequence[Product], catalog: Sequence[Product], store_name: str) -> list[str]:
    """``Brand Model`` phrases whose model words do not continue a source of that brand's name."""
    invented = []
    for brand in sorted({p.brand for p in catalog}, key=len, reverse=True):
        models = [_words(_model_part(p)) for p in sources if p.brand == brand]
        pattern = re.compile(rf"(?<![\w-]){re.escape(brand)}((?: {_MODEL_WORD})+)")
        for match in pattern.finditer(reply):
            phrase = match.group(0)
            if store_name and (store_name.lower() + " ").startswith(phrase.lower() + " "):
                continue
            if store_name and phrase.lower().startswith(store_name.lower() + " "):
                continue
            words = match.group(1).lower().split()
            if any(model[:len(words)] == words[:len(model)] for model in models):
                continue
            invented.append(phrase)
    return invented


def check_grounding(reply: str, sources: Sequence[Product], catalog: Sequence[Product], allowed_text: str = "",
                    store_name: str = "") -> GroundingVerdict:
    """Whether ``reply`` names only the prices, SKUs and products of ``sources`` (see the module's rule).

    ``catalog`` is every product (to recognise a product named without its SKU), ``allowed_text`` the
    text whose prices a reply may repeat (the system prompt with the store facts, the visitor's
    message), ``store_name`` the store's name (``Ridgeline Outfitters`` is not a Ridgeline model).
    """
    allowed = _allowed_prices(sources, allowed_text)
    prices = _unique(p.text for p in find_prices(reply) if (p.currency, p.amount) not in allowed)
    source_skus = {p.sku for p in sources}
    skus = _unique(sku for sku in find_skus(reply) if sku not in source_skus)
    products = _unique([*_named_products(reply, sources, catalog),
                        *_brand_models(reply, sources, catalog, store_name)], key=str.lower)
    if not (prices or skus or products):
        return GroundingVerdict(ok=True)
    reason = "; ".join(part for part in (
        prices and f"price {', '.join(prices)} is in neither the sources nor the store facts",
        skus and f"SKU {', '.join(skus)} is not a source",
        products and f"product {', '.join(products)} is not a source",
    ) if part)
    return GroundingVerdict(False, prices, skus, products, f"invented: {reason}")


def _unique(items: Iterable[str], key=lambda item: item) -> tuple[str, ...]:
    seen, kept = set(), []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return tuple(kept)


def cites_source(reply: str, sources: Sequence[Product]) -> bool:
    """Whether the reply names at least one source's SKU."""
    skus = {p.sku for p in sources}
    return any(sku in skus for sku in find_skus(reply))


def is_decline(reply: str, catalog: Sequence[Product], support_email: str = "", store_name: str = "") -> bool:
    """Whether the reply declines: it names no SKU, price or catalog product (nor a brand's model), and
    says the thing is not there ("we don't have", "none of", "sorry", ...) or points to the support email.

    What a reply to a question whose answer is not in its sources should do, and what
    ``training evaluate --grounding`` counts as a correct answer to one.
    """
    if (find_skus(reply) or find_prices(reply) or _named_products(reply, (), catalog)
            or _brand_models(reply, (), catalog, store_name)):
        return False
    points_to_support = bool(support_email) and support_email.lower() in reply.lower()
    return points_to_support or bool(_DECLINE_PHRASES.search(reply))


def sources_in(message: str, catalog: Sequence[Product]) -> list[Product]:
    """The products of the sources block of a user message written by ``with_sources``, in order.

    A listed SKU that ``catalog`` lacks is a ``KeyError`` naming it: the catalog changed since.
    """
    if SOURCES_HEADING not in message:
        return []
    by_sku = {p.sku: p for p in catalog}
    lines = message.split(SOURCES_HEADING, 1)[1].splitlines()
    skus = [find_skus(line)[0] for line in lines if re.match(r"\[\d+\] ", line) and find_skus(line)]
    missing = [sku for sku in skus if sku not in by_sku]
    if missing:
        raise KeyError(f"{', '.join(missing)} not in the catalog")
    return [by_sku[sku] for sku in skus]


def describe(product: Product) -> str:
    """``Ridgeline Trailhead 2 (RO-10003), £189.00, sleeps 2, 1,250 g, in stock``: source facts only."""
    stock = "in stock" if product.in_stock else "out of stock"
    return ", ".join([f"{product.name} ({product.sku})", money(product.price_gbp, "GBP"), *attributes(product), stock])


def grounded_fallback(sources: Sequence[Product], store_name: str = "", limit: int = 3) -> str:
    """A reply built from the sources alone (at most ``limit`` of them), to send instead of a reply that
    invents facts; ``""`` without sources (the caller then points to the support email)."""
    if not sources:
        return ""
    where = f"the {store_name} catalogue" if store_name else "our catalogue"
    listed = "; ".join(describe(product) for product in sources[:limit])
    return f"Here is what {where} has for that: {listed}."
