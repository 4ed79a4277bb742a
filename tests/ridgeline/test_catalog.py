"""The catalog file: the committed one is complete and believable, a malformed one is refused with
the file, the line and what is wrong, and SKUs and prices survive log masking and redaction."""

from __future__ import annotations

import re
from pathlib import Path
from statistics import mean

import pytest

from ridgeline.catalog import (CATEGORIES, HEADER, SOURCES_HEADING, CatalogError, Product, money, read_catalog,
                               source_line, sources_block)
from ridgeline.privacy import mask_personal_data
from training.config import DEFAULT_ORDER_ID_PATTERN
from training.redact import Redactor

# Real outdoor brands the invented catalog must not borrow.
REAL_BRANDS = ("MSR", "Vango", "Rab", "Osprey", "Patagonia", "North Face", "Salomon", "Black Diamond", "Jetboil",
               "Sawyer", "Therm-a-Rest", "Mountain Equipment", "Berghaus", "Arc'teryx", "Montane", "Deuter",
               "Petzl", "Leki", "Merrell", "Scarpa", "Lowa", "Hilleberg", "Big Agnes", "Nemo", "Exped", "Sea to Summit",
               "Icebreaker", "Smartwool", "Katadyn", "LifeStraw", "Primus", "Trangia", "Fjallraven", "Haglofs")


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return read_catalog()


def by_category(products: list[Product], category: str) -> list[Product]:
    return [p for p in products if p.category == category]


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation (ties get their average rank): 1 when y always grows with x."""
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result
    rx, ry = ranks(xs), ranks(ys)
    mx, my = mean(rx), mean(ry)
    covariance = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    spread = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return covariance / spread


def test_spearman_sees_growth_and_its_opposite():
    assert spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(0.9486, abs=1e-3)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)


# --- the committed catalog ---------------------------------------------------------------------

def test_the_catalog_has_every_category_with_enough_products(catalog):
    assert len(catalog) >= 200
    counts = {name: len(by_category(catalog, name)) for name in CATEGORIES}
    assert len([c for c in counts.values() if c]) >= 10
    assert all(count >= 12 for count in counts.values()), counts
    for big in ("tent", "sleeping_bag", "backpack", "jacket", "boots"):
        assert counts[big] >= 25, (big, counts[big])


def test_skus_names_and_urls_are_unique_and_well_formed(catalog):
    for field in ("sku", "name", "url"):
        assert len({getattr(p, field) for p in catalog}) == len(catalog), field
    for product in catalog:
        digits = product.sku.removeprefix("RO-")
        assert re.fullmatch(r"https://ridgeline-outfitters\.example/products/[a-z0-9-]+-" + digits, product.url)
        assert product.description and product.description.split(". ")[0].strip()


def test_brands_are_invented_and_the_store_brand_is_there(catalog):
    brands = {p.brand for p in catalog}
    assert "Ridgeline" in brands and 6 <= len(brands) <= 10
    for product in catalog:
        text = f"{product.brand} {product.name} {product.description}".lower()
        assert not [b for b in REAL_BRANDS if re.search(rf"\b{re.escape(b.lower())}\b", text)], product.name


def test_prices_are_retail_prices_in_pounds_and_euros(catalog):
    for product in catalog:
        assert 1.10 <= product.price_eur / product.price_gbp <= 1.25, product.sku
        assert round(product.price_gbp * 100) % 100 in (0, 95, 99), product.price_gbp
        assert 5 <= product.price_gbp <= 700, product.sku


def test_roughly_85_percent_are_in_stock(catalog):
    share = sum(p.in_stock for p in catalog) / len(catalog)
    assert 0.75 <= share <= 0.95


def test_attributes_that_do_not_apply_are_empty(catalog):
    for product in catalog:
        if product.category != "tent":
            assert product.waterproof_mm is None or product.category == "jacket", product.sku
        if product.category != "sleeping_bag":
            assert product.temp_comfort_c is None, product.sku
        if product.category not in ("tent", "cookware"):
            assert product.capacity_persons is None, product.sku
        if product.category in ("tent", "sleeping_bag", "sleeping_pad", "boots", "jacket", "headlamp",
                                "trekking_poles", "base_layer"):
            assert product.volume_l is None, product.sku
        assert product.weight_g is not None, product.sku


def test_tents_are_heavier_for_more_people(catalog):
    tents = by_category(catalog, "tent")
    assert all(1 <= t.capacity_persons <= 6 and 1500 <= t.waterproof_mm <= 5000 for t in tents)
    assert all(60 <= t.price_gbp <= 700 for t in tents)
    assert spearman([t.capacity_persons for t in tents], [t.weight_g for t in tents]) > 0.8
    means = [mean(t.weight_g for t in tents if t.capacity_persons == n) for n in range(1, 7)]
    assert means == sorted(means)


def test_colder_sleeping_bags_are_heavier_and_dearer(catalog):
    bags = sorted(by_category(catalog, "sleeping_bag"), key=lambda b: b.temp_comfort_c)
    assert all(-20 <= b.temp_comfort_c <= 12 for b in bags)
    third = len(bags) // 3
    coldest, warmest = bags[:third], bags[-third:]
    assert mean(b.weight_g for b in coldest) > 1.3 * mean(b.weight_g for b in warmest)
    assert mean(b.price_gbp for b in coldest) > 1.5 * mean(b.price_gbp for b in warmest)
    warmth = [-b.temp_comfort_c for b in bags]
    assert spearman(warmth, [b.weight_g for b in bags]) > 0.4
    assert spearman(warmth, [b.price_gbp for b in bags]) > 0.4
    for bag in bags:  # the fill is named in the description
        assert ("down" in bag.description) != ("synthetic" in bag.description), bag.sku


def test_bigger_packs_are_heavier_and_rain_shells_have_a_hydrostatic_head(catalog):
    packs = by_category(catalog, "backpack")
    assert all(15 <= p.volume_l <= 85 for p in packs)
    assert spearman([p.volume_l for p in packs], [p.weight_g for p in packs]) > 0.6
    jackets = by_category(catalog, "jacket")
    shells = [j for j in jackets if j.waterproof_mm is not None]
    assert shells and all(5000 <= j.waterproof_mm <= 30000 for j in shells)
    assert all("not waterproof" in j.description for j in jackets if j.waterproof_mm is None)


def test_category_specific_facts_are_in_the_description(catalog):
    assert all("R-value" in p.description for p in by_category(catalog, "sleeping_pad"))
    assert all("lumen" in p.description for p in by_category(catalog, "headlamp"))
    assert all("waterproof" in p.description for p in by_category(catalog, "boots"))
    assert all(p.waterproof_mm is None for p in by_category(catalog, "boots"))
    assert all(1 <= p.capacity_persons <= 4 for p in by_category(catalog, "cookware"))


# --- malformed files ---------------------------------------------------------------------------

GOOD_ROW = ("RO-10001,Ridgeline Trailhead 2,Ridgeline,tent,189.00,219.00,1350,2,,3000,,true,"
            "https://ridgeline-outfitters.example/products/ridgeline-trailhead-2-10001,"
            "\"Two-person backpacking tent, two doors. Pitches fly-first.\"")
OTHER_ROW = GOOD_ROW.replace("RO-10001", "RO-10002")


def write(tmp_path: Path, *lines: str, header: str = ",".join(HEADER)) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path):
    (first, second) = read_catalog(write(tmp_path, GOOD_ROW, OTHER_ROW))
    assert first.description == "Two-person backpacking tent, two doors. Pitches fly-first."
    assert (first.price_gbp, first.capacity_persons, first.temp_comfort_c, first.in_stock) == (189.0, 2, None, True)
    assert second.sku == "RO-10002"


@pytest.mark.parametrize(("lines", "header", "line", "words"), [
    ((GOOD_ROW,), "sku,name,brand,category,price,price_eur", 1, "header must be exactly"),
    ((GOOD_ROW, "RO-10002,Ridgeline Trailhead 3,Ridgeline,tent,189.00"), None, 3, "5 cells, expected 14"),
    ((GOOD_ROW.replace("RO-10001", "RG-10001"),), None, 2, "SKU 'RG-10001' is not RO- and five digits"),
    ((GOOD_ROW.replace("RO-10001", "RO-1234"),), None, 2, "SKU 'RO-1234' is not RO- and five digits"),
    ((OTHER_ROW, GOOD_ROW.replace("189.00", "£189")), None, 3, "price_gbp '£189' is not a number"),
    ((GOOD_ROW.replace("189.00", "0.00"),), None, 2, "price_gbp 0.00 must be above 0"),
    ((GOOD_ROW.replace(",true,", ",yes,"),), None, 2, "in_stock 'yes' must be true or false"),
    ((GOOD_ROW.replace(",tent,", ",kayak,"),), None, 2, "category 'kayak' is not one of"),
    ((GOOD_ROW, OTHER_ROW, GOOD_ROW), None, 4, "SKU RO-10001 is already on line 2"),
])
def test_a_malformed_file_is_refused_naming_the_file_the_line_and_the_fault(tmp_path, lines, header, line, words):
    path = write(tmp_path, *lines, header=header or ",".join(HEADER))
    with pytest.raises(CatalogError) as error:
        read_catalog(path)
    message = str(error.value)
    assert message.startswith(f"{path} line {line}: "), message
    assert words in message


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, GOOD_ROW, OTHER_ROW)
    path.write_bytes(path.read_bytes().replace(b"Two-person", b"Zwei Personen \xfc", 1))
    with pytest.raises(CatalogError, match=r"line 2: not UTF-8 .*save the file as UTF-8") as error:
        read_catalog(path)
    assert str(path) in str(error.value)


def test_a_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(CatalogError, match="no such file") as error:
        read_catalog(tmp_path / "nowhere.csv")
    assert str(tmp_path / "nowhere.csv") in str(error.value)


# --- what the LLM prompt gets ------------------------------------------------------------------

TENT = Product(sku="RO-10234", name="Ridgeline Trailhead 2", brand="Ridgeline", category="tent", price_gbp=189.0,
               price_eur=219.0, weight_g=1350, capacity_persons=2, temp_comfort_c=None, waterproof_mm=3000,
               volume_l=None, in_stock=True, url="https://ridgeline-outfitters.example/products/x-10234",
               description="Two-person backpacking tent, 1.35 kg. Pitches fly-first in the rain.")
BAG = Product(sku="RO-10040", name="Cairnwood Ember -10", brand="Cairnwood", category="sleeping_bag",
              price_gbp=1249.99, price_eur=1462.99, weight_g=1250, capacity_persons=None, temp_comfort_c=-10.0,
              waterproof_mm=None, volume_l=None, in_stock=False, url="https://ridgeline-outfitters.example/products/y",
              description="Down mummy bag.")


def test_source_line_and_sources_block():
    tent_line = ("[1] RO-10234 Ridgeline Trailhead 2 (tent, Ridgeline): £189.00 / €219.00; sleeps 2; "
                 "waterproof 3,000 mm; 1,350 g; in stock. Two-person backpacking tent, 1.35 kg.")
    bag_line = ("[2] RO-10040 Cairnwood Ember -10 (sleeping bag, Cairnwood): £1,249.99 / €1,462.99; "
                "comfort -10 °C; 1,250 g; out of stock. Down mummy bag.")
    assert source_line(1, TENT) == tent_line
    assert source_line(2, BAG) == bag_line
    assert sources_block([TENT, BAG]) == f"{SOURCES_HEADING}\n{tent_line}\n{bag_line}"
    assert sources_block([]) == ""


def test_money():
    assert money(189.0, "GBP") == "£189.00"
    assert money(24.95, "GBP") == "£24.95"
    assert money(1234.5, "EUR") == "€1,234.50"
    with pytest.raises(KeyError):
        money(10, "USD")


# --- SKUs and prices are not personal data -----------------------------------------------------

TEXT = "RO-10234 costs £189.00, order RG-10421, anna@example.com"


def test_log_masking_keeps_skus_and_prices_and_masks_the_order_and_email():
    assert mask_personal_data(TEXT) == "RO-10234 costs £189.00, order <order-id>, <email>"


def test_training_redaction_keeps_skus_and_prices_and_redacts_the_order_and_email():
    redacted, counts = Redactor(DEFAULT_ORDER_ID_PATTERN).redact(TEXT)
    assert redacted == "RO-10234 costs £189.00, order <ORDER_ID>, <EMAIL>"
    assert counts == {"order_id": 1, "email": 1}


def test_every_source_line_of_the_catalog_survives_masking_and_redaction(catalog):
    redactor = Redactor(DEFAULT_ORDER_ID_PATTERN)
    for number, product in enumerate(catalog, 1):
        line = source_line(number, product)
        assert mask_personal_data(line) == line
        assert redactor.redact(line)[0] == line
