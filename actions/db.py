"""The store database (orders and the catalog): one SQLAlchemy ``Base`` and its migrations.

``ORDERS_DB_URL`` selects the database (an SQLite file by default,
``postgresql+psycopg://user:pass@host/db`` in production). ``migrate`` brings any database to the
newest schema with Alembic (``actions/migrations/versions/``), so an existing database upgrades
in place: one made before migrations existed (its ``orders`` table from ``create_all``) is
recognised and upgraded, never recreated.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class Base(DeclarativeBase):
    pass


def _ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision``; several replicas starting at once take turns."""
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # one migration at a time across replicas; released when this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(7260419)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_database(url: str) -> Engine:
    """An engine on the store database, migrated to the newest schema."""
    _ensure_sqlite_folder(url)
    engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine
