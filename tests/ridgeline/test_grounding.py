"""The grounding rule on scripted replies: grounded ones pass, each kind of invention fails with its field filled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ridgeline.catalog import Product, with_sources
from ridgeline.grounding import (Price, check_grounding, cites_source, find_prices, find_skus, grounded_fallback,
                                 is_decline, sources_in)

STORE = "Ridgeline Outfitters"
FACTS = ("Store facts:\n- UK standard delivery costs GBP 3.95 and is free on orders over GBP 60; EU delivery costs "
         "EUR 9.95 and is free over EUR 120. Our own Ridgeline brand gear has a 5-year warranty.")
EMAIL = "help@ridgeline-outfitters.example"


def product(sku: str, name: str, brand: str, category: str, gbp: float, eur: float, **facts) -> Product:
    values = dict(weight_g=None, capacity_persons=None, temp_comfort_c=None, waterproof_mm=None, volume_l=None,
                  in_stock=True, url=f"https://ridgeline-outfitters.example/p/{sku}", description="A product. More.")
    values.update(facts)
    return Product(sku=sku, name=name, brand=brand, category=category, price_gbp=gbp, price_eur=eur, **values)


TRAILHEAD_2 = product("RO-10003", "Ridgeline Trailhead 2", "Ridgeline", "tent", 189.0, 219.0, weight_g=1250,
                      capacity_persons=2)
TRAILHEAD_2_PLUS = product("RO-10004", "Ridgeline Trailhead 2 Plus", "Ridgeline", "tent", 229.0, 265.0,
                           weight_g=1550, capacity_persons=2)
SUMMIT_PRO = product("RO-10005", "Ridgeline Summit Pro", "Ridgeline", "tent", 1299.99, 1499.0, weight_g=2100,
                     capacity_persons=3, in_stock=False)
STORM = product("RO-10006", "Northwind Storm 2", "Northwind", "tent", 449.0, 525.0, weight_g=2100,
                capacity_persons=2)
EMBER = product("RO-10011", "Ridgeline Ember 5", "Ridgeline", "sleeping_bag", 89.0, 105.0, temp_comfort_c=5)
CATALOG = [TRAILHEAD_2, TRAILHEAD_2_PLUS, SUMMIT_PRO, STORM, EMBER]
SOURCES = [TRAILHEAD_2, STORM]


def check(reply: str, sources=SOURCES, allowed_text: str = FACTS):
    return check_grounding(reply, sources, CATALOG, allowed_text, store_name=STORE)


@pytest.mark.parametrize("text, amount, currency", [
    ("£189", "189.00", "GBP"), ("£189.00", "189.00", "GBP"), ("£1,299.99", "1299.99", "GBP"),
    ("GBP 189", "189.00", "GBP"), ("189 GBP", "189.00", "GBP"), ("189 pounds", "189.00", "GBP"),
    ("1 pound", "1.00", "GBP"), ("189 quid", "189.00", "GBP"), ("€219", "219.00", "EUR"),
    ("EUR 219.00", "219.00", "EUR"), ("219 euros", "219.00", "EUR"), ("219€", "219.00", "EUR"),
    ("€ 9.95", "9.95", "EUR"), ("gbp 3.95", "3.95", "GBP"),
])
def test_prices_in_every_spelling(text, amount, currency):
    assert find_prices(f"It costs {text}.") == [Price(Decimal(amount), currency, text)]


def test_numbers_without_a_currency_are_not_prices():
    assert find_prices("It weighs 1,250 g, sleeps 2, packs to 45 l and is rated 3.95 out of 5 by 120 people.") == []
    assert find_prices("The RO-10003 and order RG-10421") == []


def test_skus_are_found_with_the_shared_shape():
    assert find_skus("Take RO-10003 or RO-10006, not RO-100031 or XRO-10003 or order RG-10421.") == [
        "RO-10003", "RO-10006"]


GROUNDED_REPLIES = [
    "The Ridgeline Trailhead 2 (RO-10003) sleeps 2, weighs 1,250 g and costs £189.00 (€219.00).",
    "For two people I'd take the Ridgeline Trailhead 2 (RO-10003) at £189; the Northwind Storm 2 (RO-10006, £449.00) "
    "is for winter. Both ship free in the UK, as orders over GBP 60 ship free.",
    "The Trailhead 2 is 850 g lighter than the Storm 2, and £260.00 cheaper.",
    "Standard UK delivery is £3.95; to the EU it costs 9.95 euros.",
    "Ridgeline Outfitters' own Ridgeline gear has a 5-year warranty, and Ridgeline's tents are light.",
    "Our Ridgeline tents are light: the Ridgeline Trailhead (RO-10003) is 189 quid.",
    "Sorry, we don't have a tent for eight people; email help@ridgeline-outfitters.example and we'll help.",
    "Nothing there costs under 150 pounds, I'm afraid.",
]


@pytest.mark.parametrize("reply", GROUNDED_REPLIES)
def test_grounded_replies_pass(reply):
    verdict = check(reply, allowed_text=FACTS + "\nAnything under 150 pounds?")
    assert verdict.ok, verdict.reason
    assert verdict.reason == "grounded" and not (verdict.invented_prices or verdict.invented_skus
                                                  or verdict.invented_products)


def test_an_invented_price_fails():
    verdict = check("The Ridgeline Trailhead 2 (RO-10003) is on offer at £149 this week.")
    assert not verdict.ok
    assert verdict.invented_prices == ("£149",) and verdict.invented_skus == () and verdict.invented_products == ()
    assert "£149" in verdict.reason


def test_a_price_must_match_to_the_penny_and_in_its_currency():
    assert check("It costs £189.01.").invented_prices == ("£189.01",)
    assert check("It costs €189.").invented_prices == ("€189",)  # the GBP price with the euro sign
    assert check("It costs 219 euros or 189 quid.").ok


def test_prices_of_the_allowed_text_pass_and_others_do_not():
    assert check("Express delivery is £8.95.", allowed_text=FACTS).invented_prices == ("£8.95",)
    assert check("Express delivery is £8.95.", allowed_text=FACTS + " Express costs GBP 8.95.").ok


def test_an_invented_sku_fails():
    verdict = check("The Ridgeline Trailhead 2 (RO-10009) is great.")
    assert not verdict.ok and verdict.invented_skus == ("RO-10009",) and verdict.invented_prices == ()


def test_a_catalog_sku_that_is_not_a_source_fails():
    assert check("Try RO-10005.").invented_skus == ("RO-10005",)


def test_a_catalog_product_that_is_not_a_source_fails():
    verdict = check("You could also look at the ridgeline summit pro, our best tent.")
    assert not verdict.ok and verdict.invented_products == ("Ridgeline Summit Pro",)
    assert check("The Ember 5 is warm enough.").invented_products == ("Ridgeline Ember 5",)


def test_the_longest_name_wins():
    """A source whose name another catalog name begins is the source; the longer non-source name is not."""
    assert check("The Ridgeline Trailhead 2 Plus (RO-10004) has a bigger porch.", sources=[TRAILHEAD_2_PLUS]).ok
    verdict = check("The Ridgeline Trailhead 2 Plus has a bigger porch.", sources=[TRAILHEAD_2])
    assert verdict.invented_products == ("Ridgeline Trailhead 2 Plus",)


def test_a_made_up_model_of_a_catalog_brand_fails():
    sources = [TRAILHEAD_2]
    assert check("I'd go for the Ridgeline Alpine X2 instead.", sources).invented_products == ("Ridgeline Alpine X2",)
    assert check("The Ridgeline Trailhead 3 is newer.", sources).invented_products == ("Ridgeline Trailhead 3",)
    assert check("The Northwind 4 is roomier.", sources).invented_products == ("Northwind 4",)
    assert check("The Ridgeline Trailhead 2 Tent (RO-10003) is it.", sources).ok


def test_several_inventions_are_all_listed():
    verdict = check("The Ridgeline Summit Pro (RO-10005) costs £999.")
    assert verdict.invented_prices == ("£999",)
    assert verdict.invented_skus == ("RO-10005",)
    assert verdict.invented_products == ("Ridgeline Summit Pro",)
    assert verdict.reason.startswith("invented: price £999")


def test_cites_source():
    assert cites_source("Take the RO-10003.", SOURCES)
    assert not cites_source("Take the RO-10005.", SOURCES) and not cites_source("Take the Trailhead.", SOURCES)


def test_the_fallback_holds_only_source_facts():
    sources = [TRAILHEAD_2, STORM, SUMMIT_PRO, EMBER]
    text = grounded_fallback(sources, STORE)
    assert text == (
        "Here is what the Ridgeline Outfitters catalogue has for that: "
        "Ridgeline Trailhead 2 (RO-10003), £189.00, sleeps 2, 1,250 g, in stock; "
        "Northwind Storm 2 (RO-10006), £449.00, sleeps 2, 2,100 g, in stock; "
        "Ridgeline Summit Pro (RO-10005), £1,299.99, sleeps 3, 2,100 g, out of stock.")
    assert check_grounding(text, sources[:3], CATALOG, store_name=STORE).ok
    assert "Ember" not in text  # at most three products
    assert grounded_fallback([]) == ""
    assert grounded_fallback([EMBER]).startswith("Here is what our catalogue has for that: Ridgeline Ember 5")


@pytest.mark.parametrize("reply", [
    "Sorry, we don't have a sleeping bag rated for -20 °C.",
    "I'm afraid that's not something we sell; email help@ridgeline-outfitters.example for advice.",
    "None of the tents in our catalogue sleeps eight.",
    "We do not stock kayaks at Ridgeline Outfitters.",
    "For that, please write to help@ridgeline-outfitters.example.",
])
def test_declines(reply):
    assert is_decline(reply, CATALOG, EMAIL, STORE)


@pytest.mark.parametrize("reply", [
    "Sorry, the Ridgeline Trailhead 2 is the closest we have.",
    "We don't have it, but RO-10003 is close.",
    "We don't have one under £100.",
    "We don't have that; try the Ridgeline Alpine.",
    "The Ridgeline Trailhead 2 sleeps two.",
])
def test_not_declines(reply):
    assert not is_decline(reply, CATALOG, EMAIL, STORE)


def test_sources_in_reads_the_block_with_sources_wrote():
    message = with_sources("Which tent for two?", [STORM, TRAILHEAD_2])
    assert sources_in(message, CATALOG) == [STORM, TRAILHEAD_2]
    assert sources_in("Which tent for two?", CATALOG) == []
    with pytest.raises(KeyError, match="RO-10006"):
        sources_in(message, [TRAILHEAD_2])
