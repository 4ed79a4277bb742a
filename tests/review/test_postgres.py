"""prune and forget on a real PostgreSQL tracker store (tests/support's throw-away server)."""

from __future__ import annotations

import time

import pytest

from tests.review.conftest import DAY_S, TrackerFile, sample_conversations, session, user

pytestmark = [pytest.mark.slow]


@pytest.fixture
def pg_tracker(postgres):
    db = TrackerFile(postgres.url)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM events")
        connection.exec_driver_sql("DROP TABLE IF EXISTS tickets")
        connection.exec_driver_sql("CREATE TABLE tickets (id serial PRIMARY KEY, sender_id text, subject text)")
    now = time.time()
    for sender, events in sample_conversations(now).items():
        db.add(sender, events)
    yield db
    db.engine.dispose()


def test_list_prune_and_forget_on_postgresql(review, pg_tracker, postgres):
    # a plain postgresql:// URL works: review picks psycopg 3
    url = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    code, out, _ = review("list", db=url)
    assert [line.split()[2] for line in out.splitlines()] == ["visitor-silent", "visitor-order", "visitor-fallback"]

    now = time.time()
    for n in range(5):
        pg_tracker.add(f"idle-{n}", [*session(now - 100 * DAY_S), user("hi", "greet", 0.9, now - 100 * DAY_S)])
    old = sum(pg_tracker.count(s) for s in ("visitor-old", *(f"idle-{n}" for n in range(5))))
    total = pg_tracker.count()
    code, out, _ = review("prune", "--older-than", "90", "--batch-size", "2", db=url)
    assert code == 0 and out.startswith(f"prune: removed 6 conversations ({old} events)")
    assert pg_tracker.count() == total - old

    postgres.query("INSERT INTO tickets (sender_id, subject) VALUES ('visitor-order', 'late'), ('visitor-happy', 'x') "
                   "RETURNING id")
    events = pg_tracker.count("visitor-order")
    code, out, _ = review("forget", "--sender", "visitor-order", "--store-db", url, db=url)
    assert out.startswith(f"forget visitor-order: removed {events} tracker events, 1 tickets row, ")
    assert pg_tracker.count("visitor-order") == 0
    assert postgres.query("SELECT sender_id FROM tickets") == [("visitor-happy",)]
