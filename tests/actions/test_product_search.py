"""action_search_products and action_product_details on the real catalog, in a real SQLite store."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.config import ActionServerConfig
from actions.product_search import ActionProductDetails, ActionSearchProducts, refinement
from ridgeline.catalog import read_catalog
from ridgeline.paths import CATALOG_FILE
from ridgeline.catalog_query import Constraints, parse_constraints
from ridgeline.shapes import SKU

CATALOG = {p.sku: p for p in read_catalog()}


@pytest.fixture
def config(tmp_path) -> ActionServerConfig:
    return ActionServerConfig(orders_db_url=f"sqlite:///{tmp_path / 'store.db'}")


def tracker(text: str, intent: str = "product_search", *, channel: str = "socketio",
            entities: list[dict[str, Any]] | None = None, slots: dict[str, Any] | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": entities or []}
    return Tracker(sender_id="visitor", slots=slots or {}, latest_message=message,
                   events=[{"event": "user", "text": text, "parse_data": message, "input_channel": channel}],
                   paused=False, followup_action=None, active_loop={}, latest_action_name=None)


def run(action, config, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action(config).run(dispatcher, t, {}))
    return dispatcher.messages, events


def skus(text: str) -> list[str]:
    return re.findall(SKU, text)


def slot(events, name):
    return next(e["value"] for e in events if e.get("name") == name)


def test_a_structured_question_gets_three_products_meeting_every_limit(config):
    messages, events = run(ActionSearchProducts, config, tracker("do you have a 3 person tent under £400?"))
    shown = [CATALOG[s] for s in skus(messages[0]["text"])]
    limits = Constraints(category="tent", persons=3, max_price_gbp=400)
    assert len(shown) == 3 and all(limits.satisfied_by(p) for p in shown)
    assert slot(events, "search_results") == [p.sku for p in shown]
    in_stock = [p.in_stock for p in shown]
    assert in_stock == sorted(in_stock, reverse=True)  # in stock first
    for p in shown:  # name, price, the attribute asked about and the link, as the catalog has them
        assert f"{p.name} ({p.sku}): £{p.price_gbp:,.2f}, sleeps 3" in messages[0]["text"] and p.url in messages[0]["text"]


def test_the_webchat_gets_buttons_that_run_the_product_actions(config):
    messages, _ = run(ActionSearchProducts, config, tracker("sleeping bags warm enough for -10 °C"))
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    first = skus(messages[0]["text"])[0]
    assert payloads[:3] == [f'/product_details{{"sku":"{s}"}}' for s in skus(messages[0]["text"])]
    assert "/compare_products" in payloads and f'/more_like_this{{"sku":"{first}"}}' in payloads


@pytest.mark.parametrize("channel", ["slack", "telegram"])
def test_slack_and_telegram_get_the_same_as_text(config, channel):
    messages, _ = run(ActionSearchProducts, config, tracker("sleeping bags warm enough for -10 °C", channel=channel))
    assert "buttons" not in messages[0] or not messages[0]["buttons"]
    assert len(skus(messages[0]["text"])) == 4 and "compare them" in messages[0]["text"]  # 3 products + the hint


def test_something_the_store_does_not_sell_names_no_product(config):
    messages, events = run(ActionSearchProducts, config, tracker("do you sell kayaks?"))
    text = messages[0]["text"]
    assert text.startswith("Sorry, we don't sell kayaks.")
    assert not skus(text) and not any(p.name in text for p in CATALOG.values())
    assert slot(events, "search_results") == []


def test_no_match_says_so_and_offers_the_nearest(config):
    messages, _ = run(ActionSearchProducts, config, tracker("a 2 person tent under £20"))
    text = messages[0]["text"]
    assert text.startswith("I found no tents for 2 up to £20.00. The nearest we have (cheapest first):")
    shown = [CATALOG[s] for s in skus(text)]
    two_person = sorted((p for p in CATALOG.values() if p.category == "tent" and p.capacity_persons == 2),
                        key=lambda p: (not p.in_stock, p.price_gbp))
    assert shown == two_person[:3]


def test_a_follow_up_refines_the_last_search(config):
    messages, events = run(ActionSearchProducts, config, tracker("show me backpacks around 40 litres"))
    first = [CATALOG[s] for s in skus(messages[0]["text"])]
    follow = tracker("anything lighter?", "refine_search", slots={
        "search_query": slot(events, "search_query"), "search_results": slot(events, "search_results")})
    follow.events[:0] = [{"event": "user", "text": "show me backpacks around 40 litres"},
                         {"event": "action", "name": "action_search_products"},
                         {"event": "action", "name": "action_listen"}]
    messages, _ = run(ActionSearchProducts, config, follow)
    lighter = [CATALOG[s] for s in skus(messages[0]["text"])]
    assert lighter and all(p.category == "backpack" and 32 <= p.volume_l <= 48 for p in lighter)
    assert max(p.weight_g for p in lighter) < min(p.weight_g for p in first)


def test_refinement_words():
    shown = [CATALOG[s] for s in list(CATALOG)[:3]]
    assert refinement("cheaper ones?", shown).max_price_gbp == round(min(p.price_gbp for p in shown) - 0.01, 2)
    assert refinement("and in stock?", shown).limits() == {}  # "in stock" comes from the text's own limits
    assert parse_constraints("and in stock?").in_stock is True


def test_details_more_like_this_and_compare(config):
    sku = next(s for s, p in CATALOG.items() if p.category == "sleeping_bag")
    messages, _ = run(ActionProductDetails, config, tracker(f'/product_details{{"sku":"{sku}"}}', "product_details",
                                                            entities=[{"entity": "sku", "value": sku}]))
    product = CATALOG[sku]
    assert messages[0]["text"].startswith(f"{product.name} ({sku}) by {product.brand}: £{product.price_gbp:,.2f}")
    assert product.description in messages[0]["text"]

    messages, events = run(ActionSearchProducts, config, tracker("", "more_like_this",
                                                                 entities=[{"entity": "sku", "value": sku}]))
    similar = [CATALOG[s] for s in skus(messages[0]["text"])]
    assert len(similar) == 3 and sku not in [p.sku for p in similar]
    assert all(p.category == "sleeping_bag" for p in similar)

    messages, _ = run(ActionProductDetails, config, tracker("compare them", "compare_products",
                                                            slots={"search_results": slot(events, "search_results")}))
    text = messages[0]["text"]
    assert text.startswith("Side by side:") and all(p.sku in text for p in similar)
    warmest = min(similar, key=lambda p: p.temp_comfort_c)
    assert f"Warmest: {warmest.name}" in text


def test_an_unknown_sku_is_said_plainly(config):
    messages, _ = run(ActionProductDetails, config, tracker("details of RO-99999", "product_details"))
    assert messages[0]["text"].startswith("We have no product RO-99999.")


def test_a_follow_up_without_a_search_goes_to_the_llm(config):
    messages, events = run(ActionSearchProducts, config, tracker("anything lighter?", "refine_search"))
    assert messages == [] and events == [{"event": "followup", "timestamp": None, "name": "action_llm_response"}]


def test_a_follow_up_after_an_llm_answer_goes_to_the_llm(config):
    """"and what about gloves?" after an open question follows that answer, even with a search earlier."""
    _, events = run(ActionSearchProducts, config, tracker("sleeping bags warm enough for -10 °C"))
    slots = {"search_query": slot(events, "search_query"), "search_results": slot(events, "search_results")}
    t = tracker("and what about gloves in the snow?", "refine_search", slots=slots)
    t.events[:0] = [{"event": "user", "text": "sleeping bags warm enough for -10 °C"},
                    {"event": "action", "name": "action_search_products"},
                    {"event": "user", "text": "how do I keep my feet warm?"},
                    {"event": "action", "name": "action_llm_response"}, {"event": "action", "name": "action_listen"}]
    messages, events = run(ActionSearchProducts, config, t)
    assert messages == [] and events[0]["name"] == "action_llm_response"


def test_the_second_one_means_the_second_result(config):
    _, events = run(ActionSearchProducts, config, tracker("sleeping bags warm enough for -10 °C"))
    shown = slot(events, "search_results")
    messages, _ = run(ActionProductDetails, config, tracker("tell me more about the second one", "product_details",
                                                            slots={"search_results": shown}))
    assert messages[0]["text"].startswith(f"{CATALOG[shown[1]].name} ({shown[1]})")


def test_the_text_category_read_in_context_wins_over_an_entity(config):
    entities = [{"entity": "product_category", "value": "backpack", "start": 0, "end": 11}]
    messages, _ = run(ActionSearchProducts, config, tracker("backpacking stove under 500g", entities=entities))
    assert {CATALOG[s].category for s in skus(messages[0]["text"])} == {"stove"}


def test_a_new_price_in_the_file_reaches_the_next_search_without_a_restart(tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    config = ActionServerConfig(orders_db_url=f"sqlite:///{tmp_path / 'store.db'}", catalog_path=catalog,
                                catalog_refresh_s=0)
    messages, _ = run(ActionSearchProducts, config, tracker("do you have a 3 person tent under £400?"))
    first = CATALOG[skus(messages[0]["text"])[0]]
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(
        f"{first.sku},{first.name},{first.brand},{first.category},{first.price_gbp:.2f}",
        f"{first.sku},{first.name},{first.brand},{first.category},9.99", 1), encoding="utf-8")
    messages, _ = run(ActionProductDetails, config, tracker(f"details of {first.sku}", "product_details"))
    assert messages[0]["text"].startswith(f"{first.name} ({first.sku}) by {first.brand}: £9.99")


@pytest.mark.parametrize("question, category", [
    ("how should I choose a sleeping bag for winter camping?", "sleeping_bag"),
    ("something to purify stream water on the trail", "water_filter"),
    ("whats the weather like in the lake district", None),
    ("how do I treat a blister", None),
])
def test_an_open_question_gets_sources_only_when_the_catalog_has_something_for_it(question, category):
    from actions.catalog_search import CatalogIndex
    sources = CatalogIndex(list(CATALOG.values())).sources(question, None, k=3)
    assert [p.category for p in sources] == ([category] * 3 if category else [])
