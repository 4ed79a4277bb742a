"""``python -m review tickets`` and ``python -m review close``: the handoff tickets, for the team.

    python -m review tickets                      open tickets, oldest first, contacts masked
    python -m review tickets --all --json         every ticket, as JSON
    python -m review tickets --unmasked --token - the visitors' email addresses too (RASA_AUTH_TOKEN)
    python -m review close T-123456               the ticket is answered: close it

The tickets live in the store database (``--store-db``, default ``ORDERS_DB_URL``, else the action
server's var/orders.db), in the ``tickets`` table that the action server's migration 0003 creates
and ``action_open_ticket`` fills. Read with SQLAlchemy Core on the table's name: the review tool
does not import the action server.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from review.privacy import Masker
from review.settings import Settings
from review.store import open_engine
from ridgeline.settings import ConfigError

TABLE = sa.table("tickets", *(sa.column(name) for name in (
    "number", "sender_id", "channel", "reason", "contact", "turns", "status", "created_at", "closed_at")))
OPEN, CLOSED = "open", "closed"
NO_CONTACT = "-"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The two subcommands, with their own options (they read the store database, not the tracker store)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store-db", help="the store database's URL (default ORDERS_DB_URL, else var/orders.db)")
    common.add_argument("--unmasked", action="store_true",
                        help="show the visitors' email addresses and messages; needs --token equal to RASA_AUTH_TOKEN")
    common.add_argument("--token", help="RASA_AUTH_TOKEN, for --unmasked ('-': read it from standard input)")

    listing = commands.add_parser("tickets", parents=[common], help="the open handoff tickets, oldest first",
                                  description="The open handoff tickets, oldest first: number, created (UTC), "
                                              "channel, contact (masked), what the visitor wrote. "
                                              "Example: python -m review tickets --json")
    listing.add_argument("--all", action="store_true", help="closed tickets too")
    listing.add_argument("--json", action="store_true", help="a JSON array (with the last turns) instead of lines")

    close = commands.add_parser("close", parents=[common], help="close a ticket once a person has answered it",
                                description="Close a ticket. Example: python -m review close T-123456")
    close.add_argument("ticket", help="its number, e.g. T-123456")


def engine_of(args: argparse.Namespace, settings: Settings) -> Engine:
    engine = open_engine(args.store_db or settings.store_db, "--store-db")
    if not sa.inspect(engine).has_table("tickets"):
        engine.dispose()
        raise ConfigError("--store-db has no tickets table: the action server creates it when it starts "
                          "(migration 0003_tickets); point --store-db at its ORDERS_DB_URL.")
    return engine


def _utc(value) -> datetime | None:
    """A timestamp as the database gives it back (SQLite: a naive datetime or text) -> aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _shown(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def record(row, mask: Masker) -> dict:
    return {"number": row.number, "status": row.status, "created": _shown(_utc(row.created_at)),
            "closed": _shown(_utc(row.closed_at)) or None, "channel": row.channel, "sender": mask(row.sender_id),
            "contact": mask(row.contact) if row.contact else None, "reason": mask(row.reason or ""),
            "turns": mask(row.turns or "").splitlines()}


def line(item: dict) -> str:
    reason = " ".join(item["reason"].split())
    reason = reason if len(reason) <= 60 else reason[:59] + "…"
    status = "" if item["status"] == OPEN else f"  [closed {item['closed']}]"
    return (f"{item['number']}  {item['created']}  {item['channel']:<8}  {item['contact'] or NO_CONTACT:<24}  "
            f"{json.dumps(reason, ensure_ascii=False)}{status}")


def cmd_tickets(args: argparse.Namespace, settings: Settings, mask: Masker) -> int:
    engine = engine_of(args, settings)
    try:
        query = sa.select(TABLE).order_by(TABLE.c.created_at, TABLE.c.number)
        if not args.all:
            query = query.where(TABLE.c.status == OPEN)
        with engine.connect() as connection:
            items = [record(row, mask) for row in connection.execute(query)]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
    else:
        for item in items:
            print(line(item))
        if not items:
            print("no open tickets" if not args.all else "no tickets", file=sys.stderr)
    return 0


def cmd_close(args: argparse.Namespace, settings: Settings, mask: Masker) -> int:
    number = args.ticket.strip().upper()
    engine = engine_of(args, settings)
    try:
        with engine.begin() as connection:
            row = connection.execute(sa.select(TABLE.c.status, TABLE.c.closed_at)
                                     .where(TABLE.c.number == number)).first()
            if row is None:
                raise LookupError(f"no ticket {number} (`python -m review tickets --all` lists them)")
            if row.status == CLOSED:
                print(f"{number} was already closed on {_shown(_utc(row.closed_at))}")
                return 0
            now = datetime.now(timezone.utc)
            connection.execute(sa.update(TABLE).where(TABLE.c.number == number, TABLE.c.status == OPEN)
                               .values(status=CLOSED, closed_at=now))
    finally:
        engine.dispose()
    print(f"closed {number}")
    return 0


COMMANDS = {"tickets": cmd_tickets, "close": cmd_close}
