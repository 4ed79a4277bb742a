"""Rasa's SQL tracker store, read and pruned with short transactions while Rasa writes to it.

Rasa 3.6's ``SQLTrackerStore`` (and ridgeline_rasa's SQLite variant, the same table) keeps one row
per event: ``events(id, sender_id, type_name, timestamp, intent_name, action_name, data)``, ``data``
being the event's JSON. A conversation is every row of one ``sender_id``, in ``id`` order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from review.settings import database_url
from ridgeline.settings import ConfigError

logger = logging.getLogger(__name__)

# Rows per IN (...) list: well under SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 500


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    timestamp: float
    data: dict[str, Any]


def open_engine(url: str | URL, setting: str = "--db", must_exist: bool = True) -> Engine | None:
    """An engine for ``url``; a SQLite file that is not there is an error (``must_exist``) or ``None``,
    never a new empty file."""
    parsed = database_url(url, setting) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or not path.is_file():
            if must_exist:
                raise ConfigError(f"{setting}: no SQLite database at {path}; start the assistant first "
                                  "(`make run` writes var/run/tracker.db) or pass --db with its URL.")
            return None
        # Rasa may hold the write lock for a moment: wait for it rather than fail.
        return sa.create_engine(parsed, connect_args={"timeout": 30})
    return sa.create_engine(parsed, pool_pre_ping=True)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class TrackerDB:
    """The ``events`` table of one tracker store."""

    def __init__(self, url: str | URL) -> None:
        self.engine = open_engine(url)
        if not sa.inspect(self.engine).has_table("events"):
            raise ConfigError(f"--db {self.engine.url.render_as_string()}: there is no `events` table, so this is "
                              "not a Rasa SQL tracker store (or Rasa has not written to it yet).")
        self.events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("type_name"),
                               sa.column("timestamp"), sa.column("data"))

    def close(self) -> None:
        self.engine.dispose()

    def senders(self, since: float | None = None, until: float | None = None) -> list[tuple[str, float]]:
        """(sender, time of its last event) of the conversations last active in [since, until], newest first."""
        e = self.events
        last = sa.func.max(e.c.timestamp).label("last")
        query = sa.select(e.c.sender_id, last).group_by(e.c.sender_id)
        if since is not None:
            query = query.having(sa.func.max(e.c.timestamp) >= since)
        if until is not None:
            query = query.having(sa.func.max(e.c.timestamp) <= until)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(last.desc(), e.c.sender_id)).all()
        return [(sender, float(stamp or 0.0)) for sender, stamp in rows]

    def load(self, senders: Sequence[str], types: Iterable[str] | None = None) -> dict[str, list[Event]]:
        """Each sender's events (of ``types``, all when None), in the order Rasa wrote them."""
        e = self.events
        found: dict[str, list[Event]] = {sender: [] for sender in senders}
        wanted = sorted(types) if types is not None else None
        with self.engine.connect() as connection:
            for chunk in _chunks(list(senders), CHUNK):
                query = sa.select(e.c.id, e.c.sender_id, e.c.type_name, e.c.timestamp, e.c.data).where(
                    e.c.sender_id.in_(chunk))
                if wanted is not None:
                    query = query.where(e.c.type_name.in_(wanted))
                for row in connection.execute(query.order_by(e.c.id)):
                    try:
                        data = json.loads(row.data) if row.data else {}
                    except ValueError:
                        logger.warning("event %s of a conversation has data that is not JSON; left out", row.id)
                        continue
                    found[row.sender_id].append(Event(row.id, row.type_name, float(row.timestamp or 0.0), data))
        return found

    def delete_sender(self, sender: str) -> int:
        """Every event of ``sender``, in one transaction; the number deleted."""
        with self.engine.begin() as connection:
            return connection.execute(sa.delete(self.events).where(self.events.c.sender_id == sender)).rowcount

    def stale_senders(self, cutoff: float) -> list[str]:
        """Senders whose last event is older than ``cutoff`` (epoch seconds)."""
        e = self.events
        query = sa.select(e.c.sender_id).group_by(e.c.sender_id).having(sa.func.max(e.c.timestamp) < cutoff)
        with self.engine.connect() as connection:
            return [sender for (sender,) in connection.execute(query.order_by(e.c.sender_id))]

    def count_events(self, senders: Sequence[str]) -> int:
        e = self.events
        total = 0
        with self.engine.connect() as connection:
            for chunk in _chunks(list(senders), CHUNK):
                total += connection.execute(
                    sa.select(sa.func.count()).select_from(e).where(e.c.sender_id.in_(chunk))).scalar_one()
        return total

    def delete_stale(self, senders: Sequence[str], cutoff: float) -> tuple[int, int]:
        """One short transaction: the events of those of ``senders`` still idle since before ``cutoff``.

        Checked again inside the transaction, and only events older than ``cutoff`` go: a visitor
        who came back since the list was made keeps the new turn. Returns (conversations, events).
        """
        e = self.events
        with self.engine.begin() as connection:
            still = [sender for (sender,) in connection.execute(
                sa.select(e.c.sender_id).where(e.c.sender_id.in_(list(senders))).group_by(e.c.sender_id)
                .having(sa.func.max(e.c.timestamp) < cutoff))]
            if not still:
                return 0, 0
            removed = connection.execute(
                sa.delete(e).where(e.c.sender_id.in_(still), e.c.timestamp < cutoff)).rowcount
        return len(still), removed


# The store database's tables that hold rows about a visitor, keyed by sender_id.
VISITOR_TABLES = ("tickets", "feedback")


def delete_visitor_rows(url: str, sender: str) -> dict[str, int]:
    """Each of ``VISITOR_TABLES`` that exists in the store database with a ``sender_id`` column ->
    rows of ``sender`` deleted (one transaction). No database, or no such table: nothing to delete."""
    engine = open_engine(url, "--store-db", must_exist=False)
    if engine is None:
        return {}
    try:
        inspector = sa.inspect(engine)
        tables = [name for name in VISITOR_TABLES if inspector.has_table(name)
                  and "sender_id" in {column["name"] for column in inspector.get_columns(name)}]
        removed = {}
        with engine.begin() as connection:
            for name in tables:
                table = sa.table(name, sa.column("sender_id"))
                removed[name] = connection.execute(sa.delete(table).where(table.c.sender_id == sender)).rowcount
        return removed
    finally:
        engine.dispose()
