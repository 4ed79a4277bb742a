"""Product retrieval on the held-out questions: ``python -m tools.bench.retrieval``.

Scores the product search (``actions.catalog_search``) on ``tools/catalog/retrieval_holdout.yml``
(hand-written, never used to tune it) and prints, for each ranking engine side by side:

- hit@5: an answering SKU among the top 5, over the sold questions (target >= 0.90);
- constraints met in the top 3: every product shown satisfies every stated limit (sold questions
  with limits; target: all);
- declined: "we don't sell that" for the not-sold questions (target >= 0.95) and, wrongly, for the
  sold ones (target <= 0.05);
- the time to build the index and per query (mean, p95), on this machine.

Engines: ``bm25s`` (what the action server uses) and SQLite's FTS5 ``bm25()`` (the built-in
candidate; on the same filters, either on the search's own tokens or on its Porter tokenizer).
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from actions.catalog_search import CatalogIndex, product_text, stem, tokens
from ridgeline.catalog import Product, read_catalog
from ridgeline.catalog_query import Constraints
from tools.stats import percentile

HOLDOUT = Path(__file__).resolve().parents[1] / "catalog" / "retrieval_holdout.yml"


class Fts5Index(CatalogIndex):
    """The same search with SQLite FTS5's BM25 in place of bm25s."""

    def __init__(self, products: list[Product], porter: bool = False) -> None:
        super().__init__(products)
        self.porter = porter
        self.db = sqlite3.connect(":memory:")
        tokenizer = "porter unicode61" if porter else "unicode61"
        self.db.execute(f"CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='{tokenizer}')")
        self.db.executemany("INSERT INTO docs(rowid, body) VALUES (?, ?)", [
            (i, product_text(p) if porter else " ".join(tokens(product_text(p)))) for i, p in enumerate(products)])

    def scores(self, words) -> np.ndarray:
        terms = [w.lower() if self.porter else stem(w) for w in words]
        terms = [t for t in terms if t.isalnum()] if self.porter else [t for t in terms if t in self.vocabulary]
        result = np.zeros(len(self.products))
        if not terms:
            return result
        query = " OR ".join(f'"{t}"' for t in terms)
        for rowid, rank in self.db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ?", (query,)):
            result[rowid] = -rank  # FTS5's bm25() is lower-is-better
        return result


ENGINES = {
    "bm25s (the search's tokens)": lambda products: CatalogIndex(products),
    "SQLite FTS5 bm25() (the search's tokens)": lambda products: Fts5Index(products),
    "SQLite FTS5 bm25() (its Porter tokenizer)": lambda products: Fts5Index(products, porter=True),
}


def evaluate(index: CatalogIndex, holdout: dict) -> dict[str, float]:
    hits = constrained = constrained_ok = sold_declined = 0
    timings: list[float] = []
    misses: list[str] = []
    for question in holdout["sold"]:
        limits = Constraints.from_limits(question["constraints"])
        started = time.perf_counter()
        result = index.search(question["text"], k=5)
        timings.append((time.perf_counter() - started) * 1000)
        shown = [p.sku for p in result.products]
        if result.not_carried:
            sold_declined += 1
        if set(shown) & set(question["answers"]):
            hits += 1
        else:
            misses.append(question["text"])
        if len(limits.limits()) > 1 or limits.category is None:
            constrained += 1
            constrained_ok += all(limits.satisfied_by(p) for p in result.products[:3]) and bool(result.products)
    declined = 0
    for question in holdout["not_sold"]:
        started = time.perf_counter()
        result = index.search(question["text"], k=5)
        timings.append((time.perf_counter() - started) * 1000)
        declined += bool(result.not_carried) or not result.products
    sold, not_sold = len(holdout["sold"]), len(holdout["not_sold"])
    return {
        "hit@5": hits / sold, "constraints met (top 3)": constrained_ok / max(constrained, 1),
        "not sold: declined": declined / not_sold, "sold: declined": sold_declined / sold,
        "query ms mean": statistics.fmean(timings), "query ms p95": percentile(timings, 0.95),
        "questions": f"{sold} sold ({constrained} with limits), {not_sold} not sold", "misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("--holdout", type=Path, default=HOLDOUT)
    parser.add_argument("--show-misses", action="store_true", help="print the sold questions whose answers missed the top 5")
    args = parser.parse_args(argv)
    holdout = yaml.safe_load(args.holdout.read_text(encoding="utf-8"))
    products = read_catalog()
    print(f"{len(products)} products; {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| engine | hit@5 | constraints met, top 3 | not sold: declined | sold: declined | index build ms | query ms mean / p95 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, build in ENGINES.items():
        started = time.perf_counter()
        index = build(products)
        build_ms = (time.perf_counter() - started) * 1000
        figures = evaluate(index, holdout)
        print(f"| {name} | {figures['hit@5']:.3f} | {figures['constraints met (top 3)']:.3f} | "
              f"{figures['not sold: declined']:.3f} | {figures['sold: declined']:.3f} | {build_ms:.1f} | "
              f"{figures['query ms mean']:.2f} / {figures['query ms p95']:.2f} |")
        if args.show_misses:
            for text in figures["misses"]:
                print(f"    missed: {text}")
    print(f"questions: {figures['questions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
