"""The store database on a real PostgreSQL: migrations, the catalog loader and the product search."""

from __future__ import annotations

import psycopg
import pytest

from actions import catalog_db, orders_db
from actions.catalog_search import CatalogIndex
from actions.db import open_database
from ridgeline.catalog import read_catalog
from ridgeline.catalog_query import Constraints
from ridgeline.paths import CATALOG_FILE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store_url(postgres) -> str:
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=postgres.database,
                         autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS store_test")
        connection.execute("CREATE DATABASE store_test")
    return f"postgresql+psycopg://{postgres.user}@127.0.0.1:{postgres.port}/store_test"


def test_migrations_load_and_search_on_postgresql(store_url):
    engine = orders_db.connect(store_url, seed_sample=True)
    assert orders_db.find_order(engine, "RG-10421") is not None
    assert catalog_db.load_catalog(engine, CATALOG_FILE) == len(read_catalog())
    assert catalog_db.load_catalog(engine, CATALOG_FILE) is None
    open_database(store_url)  # a second replica starting: nothing to do, nothing lost
    products = catalog_db.products(engine)
    assert products == sorted(read_catalog(), key=lambda p: p.sku)  # prices and nulls survive the round trip
    shown = CatalogIndex(products).search("a 3 person tent under £400").products
    assert len(shown) == 3 and all(Constraints(category="tent", persons=3, max_price_gbp=400).satisfied_by(p)
                                   for p in shown)
