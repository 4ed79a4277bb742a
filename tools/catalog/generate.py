"""Write the store's catalog, ``knowledge/catalog.csv``, from the product families in ``products.py``.

    python -m tools.catalog.generate                 # rewrite knowledge/catalog.csv
    python -m tools.catalog.generate --check         # exit 1 if the committed file is not what this writes
    python -m tools.catalog.generate --output /tmp/catalog.csv --seed 7

The output depends only on the seed (a ``random.Random``, no clock, no environment), so the file
is reproducible and ``--check`` tells when it was edited by hand or the generator changed
without rewriting it. Prices are retail prices in pounds (``24.95``, ``189.00``, ``349.99``); the
euro price is about 1.17 times the pound price with the same ending. What this writes is read
back with ``ridgeline.catalog.read_catalog`` before it is kept, so the generator can never write
a file the services refuse.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import random
import re
import sys
import tempfile
from pathlib import Path

from ridgeline.catalog import CATEGORIES, HEADER, CatalogError, read_catalog
from ridgeline.paths import CATALOG_FILE
from tools.catalog.products import BUILDERS, Draft

logger = logging.getLogger(__name__)

DEFAULT_SEED = 20240611
FIRST_SKU = 10001
EUR_PER_GBP = 1.17
IN_STOCK_SHARE = 0.85
URL_PREFIX = "https://ridgeline-outfitters.example/products/"


def retail_gbp(raw: float, rng: random.Random) -> float:
    """A raw price as a shop writes it: ``24.95``, ``189.00`` or ``349.99`` (cheap things end in .95/.99)."""
    whole = max(5, round(raw))
    ending = rng.choice((0.05, 0.01) if whole < 50 else (0.0, 0.05, 0.01))
    return round(whole - ending, 2)


def retail_eur(gbp: float) -> float:
    """The euro price: about ``EUR_PER_GBP`` times the pound price, with the pound price's ending."""
    ending = round(round(gbp) - gbp, 2)  # 0.0, 0.01 or 0.05
    return round(round(gbp * EUR_PER_GBP) - ending, 2)


def slug(name: str) -> str:
    """``Cairnwood Ember -10`` -> ``cairnwood-ember-minus-10``: the product's part of its URL."""
    text = re.sub(r"(^|\s)-(\d)", r"\1minus \2", name.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rows(seed: int = DEFAULT_SEED) -> list[list[str]]:
    """Every product's cells, in ``HEADER`` order: categories in ``CATEGORIES`` order, SKUs counting up."""
    if list(BUILDERS) != list(CATEGORIES):
        raise ValueError("tools/catalog/products.py BUILDERS must have one builder per category of "
                         f"ridgeline.catalog.CATEGORIES, in that order: {', '.join(CATEGORIES)}")
    rng = random.Random(seed)
    drafts: list[Draft] = [draft for build in BUILDERS.values() for draft in build(rng)]
    names = [draft.name for draft in drafts]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tools/catalog/products.py: product names must be unique; repeated: {', '.join(duplicates)}")
    table = []
    for number, draft in enumerate(drafts, FIRST_SKU):
        gbp = retail_gbp(draft.price, rng)
        values = {
            "sku": f"RO-{number}", "name": draft.name, "brand": draft.brand, "category": draft.category,
            "price_gbp": f"{gbp:.2f}", "price_eur": f"{retail_eur(gbp):.2f}", "weight_g": draft.weight_g,
            "capacity_persons": draft.capacity_persons, "temp_comfort_c": draft.temp_comfort_c,
            "waterproof_mm": draft.waterproof_mm, "volume_l": draft.volume_l,
            "in_stock": rng.random() < IN_STOCK_SHARE, "url": f"{URL_PREFIX}{slug(draft.name)}-{number}",
            "description": draft.description,
        }
        table.append([_cell(values[column]) for column in HEADER])
    return table


def render(seed: int = DEFAULT_SEED) -> bytes:
    """The whole file: UTF-8, ``\\n`` line endings, cells quoted only where they hold a comma or quote."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows(seed))
    return buffer.getvalue().encode("utf-8")


def _validated(content: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.csv"
        path.write_bytes(content)
        read_catalog(path)  # CatalogError names the line; the generator is what to fix
    return content


def _count(content: bytes) -> int:
    return content.count(b"\n") - 1  # lines less the header


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.catalog.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=CATALOG_FILE,
                        help=f"the catalog file to write or check (default: {CATALOG_FILE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the random generator (default: {DEFAULT_SEED}, the committed file's)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file differs from what this would write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        content = _validated(render(args.seed))
    except (ValueError, CatalogError) as error:
        print(f"the generator made an unusable catalog: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_bytes() if args.output.is_file() else None
        if current == content:
            print(f"{args.output} is up to date ({_count(content)} products, seed {args.seed})")
            return 0
        state = "is missing" if current is None else "differs from what the generator writes"
        print(f"{args.output} {state} (seed {args.seed}): do not edit it by hand; change tools/catalog/products.py "
              f"and run `python -m tools.catalog.generate --output {args.output} --seed {args.seed}`",
              file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(content)
    print(f"wrote {args.output}: {_count(content)} products (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
