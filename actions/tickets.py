"""The tickets table: a visitor's request for a person, open until the team closes it.

A ticket is written by ``action_open_ticket`` (actions/handoff.py) in the store database
(``actions.db``: ``ORDERS_DB_URL``, migration 0003) and read and closed by the team with
``python -m review tickets`` / ``python -m review close T-123456``. It holds what a person needs
to answer: the message that asked, the conversation's last turns (personal data masked) and,
when the visitor gave one, the email address to answer to.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from actions.db import Base
from ridgeline.privacy import mask_personal_data

logger = logging.getLogger(__name__)

OPEN = "open"
CLOSED = "closed"
NUMBER_PREFIX = "T-"
# Turns of the conversation kept with a ticket (a user message or a bot reply each).
TURNS_KEPT = 10
# A new number is drawn again when it is taken; ten draws all taken means a full table.
NUMBER_ATTEMPTS = 10
ASSISTANT_NAME = "Sherpa"


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(8), unique=True)
    sender_id: Mapped[str] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(254), nullable=True)
    turns: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), index=True, default=OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class NewTicket:
    """What the conversation tells about a ticket, before it has a number."""

    sender_id: str
    channel: str
    reason: str
    contact: str | None
    turns: str


def new_number() -> str:
    """``T-`` and six random digits: not guessable from another visitor's ticket."""
    return f"{NUMBER_PREFIX}{secrets.randbelow(10**6):06d}"


def open_ticket(engine: Engine, ticket: NewTicket, now: dt.datetime | None = None) -> Ticket:
    """Insert ``ticket`` with a fresh number and commit it; a number already taken is drawn again."""
    created = now or dt.datetime.now(dt.timezone.utc)
    for _ in range(NUMBER_ATTEMPTS):
        row = Ticket(number=new_number(), sender_id=ticket.sender_id, channel=ticket.channel[:40],
                     reason=ticket.reason, contact=ticket.contact, turns=ticket.turns, status=OPEN,
                     created_at=created)
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(row)
        except IntegrityError:
            logger.warning("ticket number %s is taken; drawing another", row.number)
            continue
        return row
    raise RuntimeError(f"no free ticket number after {NUMBER_ATTEMPTS} draws; close or archive old tickets")


def find_ticket(engine: Engine, number: str) -> Ticket | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.query(Ticket).filter_by(number=number).one_or_none()


# ---------------------------------------------------------------- what the conversation says


def reason_of(events: Iterable[dict[str, Any]], handoff_action: str) -> str:
    """The visitor's message that asked for a person: the last one before ``handoff_action`` last ran."""
    events = list(events)
    ran = max((i for i, e in enumerate(events) if e.get("event") == "action" and e.get("name") == handoff_action),
              default=len(events))
    asked = next((e for e in reversed(events[:ran]) if e.get("event") == "user"), None)
    return (asked or {}).get("text") or ""


def last_turns(events: Iterable[dict[str, Any]], kept: int = TURNS_KEPT) -> str:
    """The conversation's last ``kept`` messages, one a line, personal data masked."""
    lines = []
    for event in events:
        text = " ".join((event.get("text") or "").split())
        if event.get("event") == "user" and text:
            lines.append(f"visitor: {text}")
        elif event.get("event") == "bot" and text:
            lines.append(f"{ASSISTANT_NAME}: {text}")
    return mask_personal_data("\n".join(lines[-kept:]))
