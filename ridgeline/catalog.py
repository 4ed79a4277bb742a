"""The store's catalog (knowledge/catalog.csv): one product a row, read and checked in one place.

Every reader of the catalog goes through ``read_catalog``: the action server's loader (into the
store database, next to the orders), the product search, the LLM prompt's sources, the
fine-tuning data (``python -m training synthesize``) and the Rasa lookup tables. A malformed row
is refused with the file, the line and what to change.

The file's columns are exactly ``HEADER``; an attribute that does not apply to a product is an
empty cell; ``in_stock`` is ``true`` or ``false``; ``category`` is one of ``CATEGORIES``; the SKU
follows ``ridgeline.shapes.SKU`` (``RO-`` and five digits, unlike an order number).
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ridgeline.paths import CATALOG_FILE
from ridgeline.shapes import SKU

HEADER = (
    "sku", "name", "brand", "category", "price_gbp", "price_eur", "weight_g", "capacity_persons",
    "temp_comfort_c", "waterproof_mm", "volume_l", "in_stock", "url", "description",
)


@dataclass(frozen=True)
class Category:
    """A kind of product the store sells, and the words visitors use for it."""

    name: str                    # the value in the csv's `category` column
    label: str                   # singular, as a sentence says it: "sleeping bag"
    plural: str                  # "sleeping bags"
    synonyms: tuple[str, ...]    # other words for it, lower case, singular and plural


CATEGORIES: dict[str, Category] = {c.name: c for c in (
    Category("tent", "tent", "tents", ("tent", "tents", "backpacking tent", "camping tent", "shelter")),
    Category("sleeping_bag", "sleeping bag", "sleeping bags",
             ("sleeping bag", "sleeping bags", "sleeping-bag", "sleeping-bags", "sleepingbag", "down bag",
              "synthetic bag", "quilt", "bag", "bags")),
    Category("sleeping_pad", "sleeping pad", "sleeping pads",
             ("sleeping pad", "sleeping pads", "sleeping mat", "sleeping mats", "camping mat", "camping mats",
              "roll mat", "air mattress", "mat", "mats", "pad", "pads")),
    Category("backpack", "backpack", "backpacks",
             ("backpack", "backpacks", "rucksack", "rucksacks", "daypack", "daypacks", "pack", "packs")),
    Category("boots", "pair of boots", "boots",
             ("boots", "boot", "hiking boots", "walking boots", "hiking shoes", "walking shoes", "shoes",
              "footwear")),
    Category("jacket", "jacket", "jackets",
             ("jacket", "jackets", "rain jacket", "waterproof jacket", "coat", "coats", "shell", "shells",
              "hardshell", "hardshells", "hard shell", "softshell", "cagoule")),
    Category("stove", "stove", "stoves", ("stove", "stoves", "camping stove", "camp stove", "burner")),
    Category("headlamp", "headlamp", "headlamps",
             ("headlamp", "headlamps", "head torch", "head torches", "headtorch", "headtorches", "torch",
              "head lamp", "head lamps", "head light")),
    Category("trekking_poles", "pair of trekking poles", "trekking poles",
             ("trekking poles", "trekking pole", "walking poles", "walking pole", "hiking poles",
              "hiking pole", "poles", "walking sticks", "hiking sticks", "sticks")),
    Category("water_filter", "water filter", "water filters",
             ("water filter", "water filters", "filter", "filters", "water purifier", "purifier")),
    Category("cookware", "cook set", "cookware",
             ("cookware", "cook set", "cook sets", "cooking set", "pot", "pots", "pan", "pans", "mess tin")),
    Category("base_layer", "base layer", "base layers",
             ("base layer", "base layers", "baselayer", "baselayers", "thermal", "thermals", "thermal top")),
)}

_SKU = re.compile(SKU)
_INT_COLUMNS = ("weight_g", "capacity_persons", "waterproof_mm")
_NUMBER_COLUMNS = ("temp_comfort_c", "volume_l")


class CatalogError(ValueError):
    """The catalog file cannot be used; the message names the file, the line and what to change."""


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    brand: str
    category: str
    price_gbp: float
    price_eur: float
    weight_g: int | None
    capacity_persons: int | None
    temp_comfort_c: float | None
    waterproof_mm: int | None
    volume_l: float | None
    in_stock: bool
    url: str
    description: str

    @property
    def category_label(self) -> str:
        return CATEGORIES[self.category].label


def read_catalog(path: Path | str = CATALOG_FILE) -> list[Product]:
    """Every product of the file, in file order; ``CatalogError`` for the first bad row."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file; the catalog is a CSV with the columns {', '.join(HEADER)}") from None
    except UnicodeDecodeError as error:
        line = error.object[:error.start].count(b"\n") + 1
        raise CatalogError(f"{path} line {line}: not UTF-8 ({error}); save the file as UTF-8") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise CatalogError(f"{path} line 1: the header must be exactly: {','.join(HEADER)}")
    products: list[Product] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        product = _product(row, f"{path} line {line}")
        if product.sku in seen:
            raise CatalogError(f"{path} line {line}: SKU {product.sku} is already on line {seen[product.sku]}")
        seen[product.sku] = line
        products.append(product)
    if not products:
        raise CatalogError(f"{path}: no products; add one row per product under the header")
    return products


def _product(row: list[str], where: str) -> Product:
    if len(row) != len(HEADER):
        raise CatalogError(f"{where}: {len(row)} cells, expected {len(HEADER)} ({','.join(HEADER)}); "
                           "quote a cell that holds a comma")
    cells = {name: value.strip() for name, value in zip(HEADER, row)}
    for required in ("sku", "name", "brand", "category", "price_gbp", "price_eur", "in_stock", "url"):
        if not cells[required]:
            raise CatalogError(f"{where}: {required} is empty; every product needs one")
    if not _SKU.fullmatch(cells["sku"]):
        raise CatalogError(f"{where}: SKU {cells['sku']!r} is not RO- and five digits (e.g. RO-10234)")
    if cells["category"] not in CATEGORIES:
        raise CatalogError(f"{where}: category {cells['category']!r} is not one of {', '.join(CATEGORIES)}")
    if cells["in_stock"] not in ("true", "false"):
        raise CatalogError(f"{where}: in_stock {cells['in_stock']!r} must be true or false")
    values: dict[str, object] = {}
    for name in ("price_gbp", "price_eur"):
        price = _number(cells[name], name, where)
        if price <= 0:
            raise CatalogError(f"{where}: {name} {cells[name]} must be above 0")
        values[name] = round(price, 2)
    for name in _INT_COLUMNS:
        value = _number(cells[name], name, where) if cells[name] else None
        if value is not None and (value != int(value) or value <= 0):
            raise CatalogError(f"{where}: {name} {cells[name]!r} must be a whole number above 0, or empty")
        values[name] = None if value is None else int(value)
    for name in _NUMBER_COLUMNS:
        values[name] = _number(cells[name], name, where) if cells[name] else None
    return Product(
        sku=cells["sku"], name=cells["name"], brand=cells["brand"], category=cells["category"],
        in_stock=cells["in_stock"] == "true", url=cells["url"], description=cells["description"],
        **values,  # type: ignore[arg-type]
    )


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CatalogError(f"{where}: {column} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CatalogError(f"{where}: {column} {text!r} is not a number")
    return value


def catalog_checksum(path: Path | str = CATALOG_FILE) -> str:
    """SHA-256 of the file's bytes: the loader reloads the database when it changes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def money(amount: float, currency: str) -> str:
    """``189.0, 'GBP'`` -> ``£189.00``; ``'EUR'`` -> ``€219.00``: the one way prices are written."""
    symbol = {"GBP": "£", "EUR": "€"}[currency]
    return f"{symbol}{amount:,.2f}"


def attributes(product: Product) -> list[str]:
    """The product's attributes that apply, as short phrases: ``sleeps 2``, ``1,250 g``, ..."""
    parts: list[str] = []
    if product.capacity_persons is not None:
        parts.append(f"sleeps {product.capacity_persons}" if product.category == "tent"
                     else f"for {product.capacity_persons} {'person' if product.capacity_persons == 1 else 'people'}")
    if product.temp_comfort_c is not None:
        parts.append(f"comfort {product.temp_comfort_c:g} °C")
    if product.volume_l is not None:
        parts.append(f"{product.volume_l:g} l")
    if product.waterproof_mm is not None:
        parts.append(f"waterproof {product.waterproof_mm:,} mm")
    if product.weight_g is not None:
        parts.append(f"{product.weight_g:,} g")
    return parts


def source_line(number: int, product: Product) -> str:
    """One numbered source of the LLM prompt: the one format the action server sends and the
    fine-tuning data (``training synthesize``) teaches."""
    stock = "in stock" if product.in_stock else "out of stock"
    facts = "; ".join([*attributes(product), stock])
    summary = product.description.split(". ")[0].rstrip(".")
    return (f"[{number}] {product.sku} {product.name} ({product.category_label}, {product.brand}): "
            f"{money(product.price_gbp, 'GBP')} / {money(product.price_eur, 'EUR')}; {facts}. {summary}.")


SOURCES_HEADING = "Products from our catalogue that may answer this (recommend only these; cite the SKU):"


def sources_block(products: list[Product]) -> str:
    """The sources the LLM gets with a visitor's question; empty when there are none."""
    if not products:
        return ""
    return "\n".join([SOURCES_HEADING, *(source_line(i, p) for i, p in enumerate(products, 1))])


def with_sources(question: str, products: list[Product]) -> str:
    """A visitor's message as the LLM gets it: the question, then the sources retrieved for it.

    The sources ride in the user message, after the shared system prompt, so that the LLM
    service's cache of the system prompt and of each conversation's earlier turns still holds:
    a turn's sources are a function of that turn's text, so the same history gives the same
    prompt text on the next turn.
    """
    block = sources_block(products)
    return f"{question}\n\n{block}" if block else question
