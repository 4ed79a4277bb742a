"""The orders table: an SQLAlchemy model, sample data and the look-up the order form uses.

The table lives in the store database (``actions.db``: ``ORDERS_DB_URL``, migrations) next to
the catalog's.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from enum import Enum
from pathlib import Path

import yaml
from sqlalchemy import Date, String, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from actions.db import Base, open_database
from ridgeline.shapes import canonical_order_id, is_email

logger = logging.getLogger(__name__)

SAMPLE_ORDERS_FILE = Path(__file__).with_name("sample_orders.yml")


class OrderStatus(str, Enum):
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class Order(Base):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))
    placed_on: Mapped[dt.date] = mapped_column(Date)
    shipped_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    expected_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    delivered_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    items: Mapped[str] = mapped_column(String(500), default="")


def normalize_order_id(text: str) -> str | None:
    """``rg 10421`` / ``#RG-10421`` -> ``RG-10421``; ``None`` when it is not an order number."""
    return canonical_order_id(text)


def normalize_email(text: str) -> str | None:
    value = (text or "").strip().strip("<>").lower()
    return value if is_email(value) else None


def load_sample_orders(path: Path = SAMPLE_ORDERS_FILE) -> list[Order]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Order(**row) for row in rows]


def connect(url: str, *, seed_sample: bool) -> Engine:
    """Open the store database (migrated to the newest schema) and seed sample orders into an empty one."""
    engine = open_database(url)
    if seed_sample:
        with Session(engine) as session, session.begin():
            if session.scalar(select(func.count()).select_from(Order)) == 0:
                session.add_all(load_sample_orders())
                logger.info("seeded sample orders into %s", engine.url.render_as_string(hide_password=True))
    return engine


@functools.lru_cache(maxsize=4)
def cached_engine(url: str, seed_sample: bool) -> Engine:
    return connect(url, seed_sample=seed_sample)


def find_order(engine: Engine, order_id: str) -> Order | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Order, order_id)


def _day(date: dt.date) -> str:
    return f"{date.day} {date:%b %Y}"


def describe(order: Order) -> str:
    """One sentence for the customer about where their order is."""
    head = f"Your order {order.order_id} ({order.items}), placed on {_day(order.placed_on)},"
    status = OrderStatus(order.status)
    if status is OrderStatus.PROCESSING:
        tail = "is being prepared in our warehouse"
        if order.expected_on:
            tail += f" and should arrive around {_day(order.expected_on)}"
    elif status is OrderStatus.SHIPPED:
        tail = f"was shipped on {_day(order.shipped_on)}" + (f" with {order.carrier}" if order.carrier else "")
        if order.expected_on:
            tail += f" and is expected on {_day(order.expected_on)}"
    elif status is OrderStatus.DELIVERED:
        tail = f"was delivered on {_day(order.delivered_on)}"
    elif status is OrderStatus.CANCELLED:
        tail = "was cancelled; any payment taken has been refunded"
    else:
        tail = "was returned and refunded"
    return f"{head} {tail}."
