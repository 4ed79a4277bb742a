"""The Rasa NLU data the catalog implies: lookup tables, synonyms and regexes for product search.

``python -m ridgeline.catalog_nlu write`` regenerates ``rasa_project/data/nlu/catalog.yml``
(``make catalog-nlu``); ``python -m ridgeline.catalog_nlu check`` exits 1 when that file is stale.

What it holds, each from the one place it is written:
- ``lookup: product_category``: every word of ``ridgeline.catalog.CATEGORIES`` (its name with
  spaces, label, plural and synonyms), and ``synonym`` entries that map each of them to the
  category's csv name ("head torch" -> ``headlamp``), so the action gets the csv name;
- ``lookup: brand``: the brands of ``knowledge/catalog.csv`` (``read_catalog``), and ``synonym``
  entries that map a brand typed in lower case to its spelling in the csv;
- ``regex: sku`` (``ridgeline.shapes.SKU``) and one regex per ``ridgeline.catalog_query.ENTITY_PATTERNS``
  entry (``max_price``, ``persons``, ...), verbatim.

Rasa's RegexEntityExtractor (``use_lookup_tables: true`` in config.yml) turns a lookup table
into one alternation with word boundaries and keeps the first alternative that matches at a
position, so each table lists its longer entries first ("thermal top" before "thermal");
ties are sorted alphabetically. The output is the same for the same inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from ridgeline.catalog import CATEGORIES, CatalogError, Product, read_catalog
from ridgeline.catalog_query import ENTITY_PATTERNS
from ridgeline.paths import CATALOG_FILE, REPO_ROOT
from ridgeline.shapes import SKU

CATALOG_NLU_FILE = REPO_ROOT / "rasa_project" / "data" / "nlu" / "catalog.yml"

HEADER = (
    "# GENERATED from knowledge/catalog.csv (brands), ridgeline/catalog.py (categories and their words),\n"
    "# ridgeline/shapes.py (sku) and ridgeline/catalog_query.py (ENTITY_PATTERNS) by `make catalog-nlu`\n"
    "# (python -m ridgeline.catalog_nlu write); edit those, not this file.\n"
    "# Lookup tables list longer entries first: Rasa keeps the first alternative that matches.\n"
)


class CatalogNluError(ValueError):
    """The catalog's words cannot become unambiguous NLU data; the message says what to change."""


def category_words() -> dict[str, str]:
    """Every word a visitor may use for a category (lower case) -> the category's csv name."""
    words: dict[str, str] = {}
    for category in CATEGORIES.values():
        for word in (category.name.replace("_", " "), category.label, category.plural, *category.synonyms):
            word = " ".join(word.lower().split())
            if words.get(word, category.name) != category.name:
                raise CatalogNluError(f"ridgeline/catalog.py: {word!r} is a word of both {words[word]} and "
                                      f"{category.name}; keep it in one category")
            words[word] = category.name
    return words


def brands(products: list[Product]) -> list[str]:
    """The catalog's brands, each once, as the csv spells them, sorted."""
    return sorted({product.brand for product in products})


def _longest_first(entries) -> list[str]:
    return sorted(set(entries), key=lambda entry: (-len(entry), entry))


def _scalar(text: str) -> str:
    """``text`` as a YAML value: plain when YAML reads it back unchanged, else double-quoted."""
    try:
        plain = yaml.safe_load(f"k: {text}") == {"k": text}
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text, ensure_ascii=False)


def _block(kind: str, name: str, examples: list[str]) -> str:
    lines = "".join(f"      - {example}\n" for example in examples)
    return f"  - {kind}: {_scalar(name)}\n    examples: |\n{lines}"


def render(products: list[Product]) -> str:
    """The text of rasa_project/data/nlu/catalog.yml for this catalog."""
    words = category_words()
    brand_names = brands(products)
    clash = sorted(brand for brand in brand_names if brand.lower() in words)
    if clash:
        raise CatalogNluError(f"brand(s) {', '.join(clash)} are also category words in ridgeline/catalog.py; "
                              "rename the brand or drop the category word")
    blocks = [
        _block("lookup", "product_category", _longest_first(words)),
        _block("lookup", "brand", _longest_first(brand_names)),
    ]
    for name in sorted(CATEGORIES):
        synonyms = sorted(word for word, category in words.items() if category == name and word != name)
        if synonyms:
            blocks.append(_block("synonym", name, synonyms))
    for brand in brand_names:
        if brand.lower() != brand:
            blocks.append(_block("synonym", brand, [brand.lower()]))
    blocks.append(_block("regex", "sku", [SKU]))
    for name in sorted(ENTITY_PATTERNS):
        blocks.append(_block("regex", name, [ENTITY_PATTERNS[name]]))
    return HEADER + 'version: "3.1"\n\nnlu:\n' + "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ridgeline.catalog_nlu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--catalog", type=Path, default=CATALOG_FILE)
    parser.add_argument("--nlu-file", type=Path, default=CATALOG_NLU_FILE)
    args = parser.parse_args(argv)
    try:
        expected = render(read_catalog(args.catalog))
    except (CatalogError, CatalogNluError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    current = args.nlu_file.read_text(encoding="utf-8") if args.nlu_file.exists() else None
    if args.command == "write":
        if current != expected:
            args.nlu_file.parent.mkdir(parents=True, exist_ok=True)
            args.nlu_file.write_text(expected, encoding="utf-8")
            print(f"wrote {args.nlu_file}")
        return 0
    if current != expected:
        print(f"{args.nlu_file} is out of date with {args.catalog} and ridgeline/; run `make catalog-nlu`.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
