"""The store database's migrations and the catalog loader, on real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from actions import catalog_db, orders_db
from actions.db import open_database
from ridgeline.catalog import CatalogError, read_catalog
from ridgeline.paths import CATALOG_FILE


def test_a_database_from_before_migrations_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the orders table as create_all made it, with a customer's order
        db.execute("CREATE TABLE orders (order_id VARCHAR(16) PRIMARY KEY, email VARCHAR(254) NOT NULL, "
                   "status VARCHAR(16) NOT NULL, placed_on DATE NOT NULL, shipped_on DATE, expected_on DATE, "
                   "delivered_on DATE, carrier VARCHAR(40), items VARCHAR(500) NOT NULL)")
        db.execute("INSERT INTO orders VALUES ('RG-55555', 'a@b.example', 'shipped', '2026-11-01', NULL, NULL, "
                   "NULL, NULL, 'a tent')")
    engine = orders_db.connect(f"sqlite:///{path}", seed_sample=True)
    assert orders_db.find_order(engine, "RG-55555").items == "a tent"  # kept, and no sample orders added
    tables = set(sa.inspect(engine).get_table_names())
    assert {"orders", "products", "catalog_loads", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0003_tickets"
        assert connection.scalar(sa.text("SELECT count(*) FROM orders")) == 1
    open_database(f"sqlite:///{path}")  # a second start changes nothing


def test_the_catalog_loads_once_and_again_when_the_file_changes(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    csv = tmp_path / "catalog.csv"
    csv.write_text(CATALOG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert catalog_db.load_catalog(engine, csv) == len(read_catalog())
    assert catalog_db.load_catalog(engine, csv) is None  # unchanged: nothing to do
    first = read_catalog(csv)[0]
    changed = csv.read_text(encoding="utf-8").replace(
        f"{first.sku},{first.name},{first.brand},{first.category},{first.price_gbp:.2f}",
        f"{first.sku},{first.name},{first.brand},{first.category},1.00", 1)
    assert changed != csv.read_text(encoding="utf-8")
    csv.write_text(changed, encoding="utf-8")
    assert catalog_db.load_catalog(engine, csv) == len(read_catalog())
    assert next(p for p in catalog_db.products(engine) if p.sku == first.sku).price_gbp == 1.00


def test_a_malformed_catalog_is_refused_and_the_products_stay(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    catalog_db.load_catalog(engine, CATALOG_FILE)
    bad = tmp_path / "catalog.csv"
    lines = CATALOG_FILE.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",true,", ",yes,", 1).replace(",false,", ",yes,", 1)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=rf"{bad} line 6: in_stock 'yes' must be true or false"):
        catalog_db.load_catalog(engine, bad)
    assert len(catalog_db.products(engine)) == len(read_catalog())


def test_the_operators_command_loads_and_refuses(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert catalog_db.main(["load", "--db", url, "--catalog", str(CATALOG_FILE)]) == 0
    assert f"loaded {len(read_catalog())} products" in capsys.readouterr().out
    assert catalog_db.main(["load", "--db", url, "--catalog", str(CATALOG_FILE)]) == 0
    assert "unchanged since the last load" in capsys.readouterr().out
    missing = tmp_path / "nope.csv"
    assert catalog_db.main(["load", "--db", url, "--catalog", str(missing)]) == 1
    assert "catalog refused" in capsys.readouterr().err
