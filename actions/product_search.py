"""``action_search_products`` and ``action_product_details``: the scripted, exact product search.

Every product named comes from the catalog (``actions.catalog_search``): three that meet every
limit the visitor stated, in stock first; the nearest ones, saying which limit had to go, when
none does; a plain "we don't sell that" for what the store has no word for. The webchat (and the
REST channel) get buttons (details, compare, more like this) whose payloads run these actions
again; Slack and Telegram get the same as text. Follow-ups ("anything lighter?", "in stock?")
refine the last search, kept in the ``search_query`` and ``search_results`` slots.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import catalog_db, orders_db
from actions.catalog_search import CatalogIndex, CatalogSearch, SearchResult
from actions.config import ActionServerConfig, Configured
from ridgeline.catalog import CATEGORIES, CatalogError, Product, attributes, money
from ridgeline.catalog_query import Constraints, find_category
from ridgeline.shapes import SKU

logger = logging.getLogger(__name__)

TEXT_ONLY_CHANNELS = {"slack", "telegram"}
RESULTS = 3
PRODUCT_ACTIONS = {"action_search_products", "action_product_details"}
LLM_ACTION = "action_llm_response"


@functools.lru_cache(maxsize=4)
def catalog_search(config: ActionServerConfig) -> CatalogSearch:
    """The process's catalog index for this configuration: the store database's products, loaded
    from ``CATALOG_PATH`` when the file changed, checked every ``CATALOG_REFRESH_S`` seconds."""
    seen: list[str | None] = [None]

    def load() -> list[Product] | None:
        engine = orders_db.cached_engine(config.orders_db_url, config.orders_seed_sample)
        try:
            catalog_db.load_catalog(engine, config.catalog_path)
        except (CatalogError, OSError) as error:
            logger.error("catalog not loaded, the products loaded before stay: %s", error)
        checksum = catalog_db.last_checksum(engine)
        if checksum == seen[0]:
            return None
        seen[0] = checksum
        return catalog_db.products(engine)

    return CatalogSearch(load, refresh_s=config.catalog_refresh_s)


async def current_index(config: ActionServerConfig) -> CatalogIndex:
    return await asyncio.to_thread(catalog_search(config).index)


# -- what the visitor sees -------------------------------------------------------------------------

def describe(constraints: Constraints) -> str:
    """``tents for 2 people up to £200, in stock``: the limits, as a sentence says them."""
    category = CATEGORIES[constraints.category].plural if constraints.category else "products"
    parts = [f"{constraints.brand} {category}" if constraints.brand else category]
    if constraints.persons is not None:
        parts.append(f"for {constraints.persons}")
    if constraints.min_persons is not None:
        parts.append(f"for {constraints.min_persons} or more")
    if constraints.max_temp_comfort_c is not None:
        parts.append(f"comfortable at {constraints.max_temp_comfort_c:g} °C or below")
    if constraints.min_volume_l is not None and constraints.max_volume_l is not None:
        parts.append(f"of {constraints.min_volume_l:g}-{constraints.max_volume_l:g} l")
    elif constraints.min_volume_l is not None:
        parts.append(f"of at least {constraints.min_volume_l:g} l")
    elif constraints.max_volume_l is not None:
        parts.append(f"of at most {constraints.max_volume_l:g} l")
    if constraints.min_waterproof_mm is not None:
        parts.append(f"waterproof to {constraints.min_waterproof_mm:,} mm or more")
    if constraints.max_weight_g is not None:
        parts.append(f"under {constraints.max_weight_g:,.0f} g")
    if constraints.max_price_gbp is not None:
        parts.append(f"up to {money(constraints.max_price_gbp, 'GBP')}")
    if constraints.max_price_eur is not None:
        parts.append(f"up to {money(constraints.max_price_eur, 'EUR')}")
    if constraints.in_stock:
        parts.append("in stock")
    return " ".join(parts)


def product_line(number: int, product: Product, currency: str) -> str:
    stock = "in stock" if product.in_stock else "out of stock"
    price = money(product.price_eur if currency == "EUR" else product.price_gbp, currency)
    facts = ", ".join([*attributes(product), stock])
    return f"{number}. {product.name} ({product.sku}): {price}, {facts}. {product.url}"


def currency_of(constraints: Constraints) -> str:
    return "EUR" if constraints.max_price_eur is not None else "GBP"


def results_text(result: SearchResult) -> str:
    constraints = result.constraints
    lines = [product_line(i, p, currency_of(constraints)) for i, p in enumerate(result.products, 1)]
    if result.relaxed:
        head = (f"I found no {describe(constraints)}. The nearest we have"
                f"{_relaxed_words(result.relaxed)}:")
    else:
        more = f" ({result.matched} match, in stock first)" if result.matched > len(result.products) else ""
        head = f"Here {'is' if len(lines) == 1 else 'are'} our {describe(constraints)}{more}:"
    return "\n".join([head, *lines])


def _relaxed_words(relaxed: tuple[str, ...]) -> str:
    words = {
        "in_stock": "including out-of-stock ones", "max_price_gbp": "cheapest first",
        "max_price_eur": "cheapest first", "max_weight_g": "lightest first",
        "min_waterproof_mm": "most waterproof first", "max_volume_l": "smallest first",
        "min_volume_l": "largest first", "max_temp_comfort_c": "warmest first",
        "persons": "other sizes", "min_persons": "largest first", "brand": "other brands",
    }
    said = [words[name] for name in relaxed if name in words]
    return f" ({', '.join(dict.fromkeys(said))})" if said else ""


def not_carried_text(words: tuple[str, ...]) -> str:
    kinds = ", ".join(c.plural for c in CATEGORIES.values())
    return (f"Sorry, we don't sell {' '.join(words)}. Ridgeline Outfitters carries {kinds}. "
            "Can I help you find one of those?")


def buttons_for(products: list[Product]) -> list[dict[str, str]]:
    buttons = [{"title": f"Details: {p.name}", "payload": f'/product_details{{"sku":"{p.sku}"}}'} for p in products]
    if len(products) > 1:
        buttons.append({"title": "Compare these", "payload": "/compare_products"})
    if products:
        first = products[0]
        buttons.append({"title": f"More like {first.name}", "payload": f'/more_like_this{{"sku":"{first.sku}"}}'})
    return buttons


def send(dispatcher: CollectingDispatcher, tracker: Tracker, text: str, products: list[Product]) -> None:
    """Buttons where the channel shows them; the same choices as text on Slack and Telegram."""
    if tracker.get_latest_input_channel() in TEXT_ONLY_CHANNELS:
        if products:
            text += ("\nReply \"details RO-…\" with a SKU for more, \"compare them\" or \"more like "
                     f"{products[0].sku}\".")
        dispatcher.utter_message(text=text)
    else:
        dispatcher.utter_message(text=text, buttons=buttons_for(products))


def _results_events(result: SearchResult, text: str) -> list[dict[str, Any]]:
    return [
        SlotSet("search_query", {"limits": result.constraints.limits(), "text": text}),
        SlotSet("search_results", [p.sku for p in result.products]),
    ]


def _entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return value if isinstance(value, str) and value else None


def _sku(tracker: Tracker) -> str | None:
    value = _entity(tracker, "sku")
    if value:
        return value.upper()
    found = re.search(SKU, (tracker.latest_message or {}).get("text") or "", re.IGNORECASE)
    return found.group(0).upper() if found else None


def follows_a_search(tracker: Tracker) -> bool:
    """Whether the turn before this message was answered by a product action: only then does a
    follow-up ("anything lighter?", "what about in stock?") refine a search."""
    seen_this_message = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_this_message:
                return False  # a whole earlier turn with no action of ours
            seen_this_message = True
        elif kind == "action" and seen_this_message and event.get("name") not in (None, "action_listen"):
            return event.get("name") in PRODUCT_ACTIONS
    return False


def refinement(text: str, shown: list[Product]) -> Constraints:
    """What a follow-up adds to the last search: "lighter" than the lightest shown, "cheaper"
    than the cheapest, "warmer", "bigger"; "in stock" and any new numbers come from the text."""
    lowered = text.lower()
    limits: dict[str, Any] = {}
    weights = [p.weight_g for p in shown if p.weight_g is not None]
    temps = [p.temp_comfort_c for p in shown if p.temp_comfort_c is not None]
    volumes = [p.volume_l for p in shown if p.volume_l is not None]
    persons = [p.capacity_persons for p in shown if p.capacity_persons is not None]
    if re.search(r"\blight(?:er|est)?\b", lowered) and weights:
        limits["max_weight_g"] = min(weights) - 1
    if re.search(r"\b(?:cheaper|cheapest|less expensive|lower price|budget)\b", lowered) and shown:
        limits["max_price_gbp"] = round(min(p.price_gbp for p in shown) - 0.01, 2)
    if re.search(r"\bwarm(?:er|est)?\b", lowered) and temps:
        limits["max_temp_comfort_c"] = min(temps) - 1
    if re.search(r"\b(?:bigger|larger|roomier|more space)\b", lowered):
        if volumes:
            limits["min_volume_l"] = max(volumes) + 1
        elif persons:
            limits["min_persons"] = max(persons) + 1
    return Constraints.from_limits(limits)


class ActionSearchProducts(Configured, Action):
    """product_search, refine_search and more_like_this."""


    def name(self) -> str:
        return "action_search_products"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        config = self.config
        message = tracker.latest_message or {}
        text = message.get("text") or ""
        intent = (message.get("intent") or {}).get("name")
        try:
            index = await current_index(config)
        except Exception:
            logger.exception("the catalog is unavailable")
            dispatcher.utter_message(text="Sorry, I can't look through our catalogue right now. "
                                          "Please try again in a minute, or browse https://ridgeline-outfitters.example.")
            return []
        if not index.products:
            dispatcher.utter_message(text="Sorry, our catalogue is not loaded yet. Please try again in a minute.")
            return []
        if intent == "more_like_this":
            sku = _sku(tracker) or next(iter(tracker.get_slot("search_results") or []), None)
            if sku not in index.by_sku:
                dispatcher.utter_message(text="Which product? Search for something first, then ask for more like it.")
                return []
            result = index.more_like(sku, k=RESULTS)
            head = f"More like the {index.by_sku[sku].name}:"
            lines = [product_line(i, p, "GBP") for i, p in enumerate(result.products, 1)]
            send(dispatcher, tracker, "\n".join([head, *lines]), result.products)
            return _results_events(result, text)
        previous = None
        if intent == "refine_search":
            last = tracker.get_slot("search_query")
            if not isinstance(last, dict) or not follows_a_search(tracker):
                # "and what about gloves?" after an LLM answer follows that answer, not a search
                return [FollowupAction(LLM_ACTION)]
            shown = [index.by_sku[s] for s in tracker.get_slot("search_results") or [] if s in index.by_sku]
            previous = Constraints.from_limits(last.get("limits")).refined_by(refinement(text, shown))
        # The text's own category word is read in context ("backpacking stove" is a stove); Rasa's
        # entity (the same words, from the generated lookup table) is the fallback.
        category = None if find_category(text) else _entity(tracker, "product_category")
        result = index.search(text, category=category, previous=previous, k=RESULTS)
        if result.not_carried:
            dispatcher.utter_message(text=not_carried_text(result.not_carried))
            return [SlotSet("search_results", [])]
        if not result.products:
            dispatcher.utter_message(text=f"I found nothing in our catalogue for {describe(result.constraints)}. "
                                          "Could you tell me what kind of product you are after?")
            return [SlotSet("search_results", [])]
        logger.info("product search %s -> %s", result.constraints.limits(), [p.sku for p in result.products])
        send(dispatcher, tracker, results_text(result), result.products)
        return _results_events(result, text)


class ActionProductDetails(Configured, Action):
    """product_details (one SKU) and compare_products (the last results)."""


    def name(self) -> str:
        return "action_product_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        config = self.config
        index = await current_index(config)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        shown = [index.by_sku[s] for s in tracker.get_slot("search_results") or [] if s in index.by_sku]
        if intent == "compare_products":
            if len(shown) < 2:
                dispatcher.utter_message(text="Search for a few products first, then I can compare them.")
                return []
            dispatcher.utter_message(text=comparison_text(shown))
            return []
        sku = _sku(tracker)
        product = index.by_sku.get(sku or "") or (None if sku else _ordinal(tracker, shown))
        if product is None:
            dispatcher.utter_message(text=(f"We have no product {sku}. " if sku else "")
                                     + "Which one? Give me its SKU (RO- and five digits) or search for it.")
            return []
        dispatcher.utter_message(text=details_text(product))
        return []


_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1,
             "one": 0, "two": 1, "three": 2, "1": 0, "2": 1, "3": 2}


def _ordinal(tracker: Tracker, shown: list[Product]) -> Product | None:
    """"the second one", "number 3", "the last one": a product of the last results."""
    text = ((tracker.latest_message or {}).get("text") or "").lower()
    found = re.search(r"\b(first|1st|second|2nd|third|3rd|last)\b|\bnumber\s?(one|two|three|[123])\b", text)
    if not found or not shown:
        return None
    position = _ORDINALS[found.group(1) or found.group(2)]
    return shown[position] if -len(shown) <= position < len(shown) else None


def details_text(product: Product) -> str:
    stock = "In stock" if product.in_stock else "Out of stock at the moment"
    facts = "; ".join(attributes(product))
    return (f"{product.name} ({product.sku}) by {product.brand}: {money(product.price_gbp, 'GBP')} / "
            f"{money(product.price_eur, 'EUR')}. {facts + '. ' if facts else ''}{stock}.\n"
            f"{product.description}\n{product.url}")


def comparison_text(products: list[Product]) -> str:
    lines = ["Side by side:"]
    lines += [f"- {p.name} ({p.sku}): {money(p.price_gbp, 'GBP')}, {', '.join(attributes(p)) or p.category_label}, "
              f"{'in stock' if p.in_stock else 'out of stock'}" for p in products]
    cheapest = min(products, key=lambda p: p.price_gbp)
    lines.append(f"Cheapest: {cheapest.name}.")
    weighed = [p for p in products if p.weight_g is not None]
    if len(weighed) > 1:
        lightest = min(weighed, key=lambda p: p.weight_g)
        lines.append(f"Lightest: {lightest.name} ({lightest.weight_g:,} g).")
    rated = [p for p in products if p.temp_comfort_c is not None]
    if len(rated) > 1:
        warmest = min(rated, key=lambda p: p.temp_comfort_c)
        lines.append(f"Warmest: {warmest.name} (comfort {warmest.temp_comfort_c:g} °C).")
    return "\n".join(lines)
