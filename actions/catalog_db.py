"""The catalog in the store database: loaded from knowledge/catalog.csv, read by the product search.

``load_catalog`` replaces the products with the file's when the table is empty or the file
changed (its SHA-256 differs from the last load's), in one transaction: a malformed file is
refused with its file and line (``ridgeline.catalog.CatalogError``) and the products already
loaded stay. Prices and stock therefore refresh from the file, or from the store's own system
exporting the same columns, without retraining Rasa: the action server checks the file every
``CATALOG_REFRESH_S`` seconds (``actions.catalog_search``), and an operator can load it at once:

    python -m actions.catalog_db load [--catalog knowledge/catalog.csv] [--db URL]
    python -m actions.catalog_db migrate [--db URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from sqlalchemy import Boolean, DateTime, Float, Integer, Numeric, String, Text, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from actions.db import Base, open_database
from ridgeline.catalog import HEADER, CatalogError, Product, catalog_checksum, read_catalog

logger = logging.getLogger(__name__)


class ProductRow(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    brand: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(40), index=True)
    price_gbp: Mapped[float] = mapped_column(Numeric(10, 2, asdecimal=False))
    price_eur: Mapped[float] = mapped_column(Numeric(10, 2, asdecimal=False))
    weight_g: Mapped[int | None] = mapped_column(Integer, nullable=True)
    capacity_persons: Mapped[int | None] = mapped_column(Integer, nullable=True)
    temp_comfort_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    waterproof_mm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volume_l: Mapped[float | None] = mapped_column(Float, nullable=True)
    in_stock: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)


class CatalogLoad(Base):
    __tablename__ = "catalog_loads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    checksum: Mapped[str] = mapped_column(String(64))
    products: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def last_checksum(engine: Engine) -> str | None:
    with Session(engine) as session:
        return session.scalar(select(CatalogLoad.checksum).order_by(CatalogLoad.id.desc()).limit(1))


def load_catalog(engine: Engine, path: Path | str) -> int | None:
    """Load the file when the table is empty or the file changed: the number of products loaded,
    or ``None`` when the database already holds this file. Raises ``CatalogError``."""
    if not Path(path).is_file():
        raise CatalogError(f"{path}: no such file; set CATALOG_PATH to the catalog CSV")
    checksum = catalog_checksum(path)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ProductRow))
    if count and checksum == last_checksum(engine):
        return None
    products = read_catalog(path)  # the whole file is checked before anything changes
    with Session(engine) as session, session.begin():
        session.execute(delete(ProductRow))
        session.add_all(ProductRow(**{name: getattr(p, name) for name in HEADER}) for p in products)
        session.add(CatalogLoad(source=str(path)[-300:], checksum=checksum, products=len(products),
                                loaded_at=dt.datetime.now(dt.timezone.utc)))
    logger.info("loaded %d products from %s into the store database", len(products), path)
    return len(products)


def products(engine: Engine) -> list[Product]:
    """Every product in the database, in SKU order."""
    with Session(engine) as session:
        rows = session.scalars(select(ProductRow).order_by(ProductRow.sku)).all()
        return [Product(**{name: getattr(row, name) for name in HEADER}) for row in rows]


def main(argv: list[str] | None = None) -> int:
    from actions.config import get_config

    config = get_config()
    parser = argparse.ArgumentParser(prog="python -m actions.catalog_db", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("load", "migrate"))
    parser.add_argument("--catalog", type=Path, default=config.catalog_path, help="the catalog CSV (CATALOG_PATH)")
    parser.add_argument("--db", default=config.orders_db_url, help="the store database URL (ORDERS_DB_URL)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = open_database(args.db)
    if args.command == "migrate":
        print("the store database is at the newest schema")
        return 0
    try:
        loaded = load_catalog(engine, args.catalog)
    except CatalogError as error:
        print(f"catalog refused: {error}", file=sys.stderr)
        return 1
    print(f"{args.catalog}: unchanged since the last load" if loaded is None
          else f"loaded {loaded} products from {args.catalog}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
