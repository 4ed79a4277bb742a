"""python -m review tickets / close: the handoff tickets in the store database (review/tickets.py).

The tickets are written as the action server writes them (actions.tickets on a database its
migrations made); the review tool reads them by the table's name, with no tracker store at all.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from actions import db, tickets
from review.store import delete_visitor_rows

TOKEN = "review-test-token"
DAY = dt.timedelta(days=1)
NOW = dt.datetime(2026, 5, 1, 14, 3, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = db.open_database(url)
    rows = [("visitor-b", "socketio", "get me a human, order RG-10421 is late", "anna.berg@example.com", NOW - DAY),
            ("visitor-a", "rest", "I want to talk to a person", None, NOW - 2 * DAY),
            ("visitor-c", "slack", "a person please", "jo@mail.example", NOW)]
    for sender, channel, reason, contact, created in rows:
        tickets.open_ticket(engine, tickets.NewTicket(sender, channel, reason, contact,
                                                      "visitor: hi\nSherpa: Hello! Mail me at <email>"), created)
    with engine.begin() as connection:  # known numbers, oldest first: T-000001 (a), T-000002 (b), T-000003 (c)
        for number, sender in enumerate(("visitor-a", "visitor-b", "visitor-c"), start=1):
            connection.execute(sa.text("UPDATE tickets SET number = :n WHERE sender_id = :s"),
                               {"n": f"T-{number:06d}", "s": sender})
    engine.dispose()
    monkeypatch.delenv("DB_HOST", raising=False)
    monkeypatch.setenv("RASA_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("ORDERS_DB_URL", url)
    return url


@pytest.fixture
def review(capsys):
    """``python -m review`` in-process, with no --db: the ticket commands never open the tracker store.
    Returns (exit code, stdout, stderr)."""
    from review.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_tickets_lists_the_open_ones_oldest_first_with_contacts_masked(store, review):
    code, out, _ = review("tickets")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["T-000001", "T-000002", "T-000003"]
    assert lines[0].startswith("T-000001  2026-04-29 14:03 UTC  rest ")
    assert " - " in lines[0] and '"I want to talk to a person"' in lines[0]  # declined: no contact
    assert "<email>" in lines[1] and '"get me a human, order <order-id> is late"' in lines[1]
    assert "anna.berg@example.com" not in out and "RG-10421" not in out and "jo@mail.example" not in out


def test_tickets_as_json_with_the_last_turns(store, review):
    code, out, _ = review("tickets", "--json")
    items = json.loads(out)
    assert code == 0 and [i["number"] for i in items] == ["T-000001", "T-000002", "T-000003"]
    second = items[1]
    assert {k: second[k] for k in ("status", "created", "closed", "channel", "sender", "contact")} == {
        "status": "open", "created": "2026-04-30 14:03 UTC", "closed": None, "channel": "socketio",
        "sender": "visitor-b", "contact": "<email>"}
    assert second["turns"] == ["visitor: hi", "Sherpa: Hello! Mail me at <email>"]
    assert items[0]["contact"] is None


def test_unmasked_contacts_need_the_rasa_api_token(store, review):
    code, _, err = review("tickets", "--unmasked")
    assert code == 2 and "RASA_AUTH_TOKEN" in err
    code, _, err = review("tickets", "--unmasked", "--token", "wrong")
    assert code == 2
    code, out, _ = review("tickets", "--unmasked", "--token", TOKEN)
    assert code == 0 and "anna.berg@example.com" in out and "RG-10421" in out and "jo@mail.example" in out


def test_close_takes_a_ticket_off_the_list_and_records_when(store, review):
    code, out, _ = review("close", "t-000002")  # typed in lower case
    assert code == 0 and out.strip() == "closed T-000002"
    _, out, _ = review("tickets")
    assert [line.split()[0] for line in out.splitlines()] == ["T-000001", "T-000003"]
    _, out, _ = review("tickets", "--all", "--json")
    closed = next(i for i in json.loads(out) if i["number"] == "T-000002")
    assert closed["status"] == "closed" and closed["closed"].endswith(" UTC")
    with sa.create_engine(store).connect() as connection:
        assert connection.execute(sa.text("SELECT closed_at FROM tickets WHERE number = 'T-000002'")).scalar_one()
    code, out, _ = review("close", "T-000002")
    assert code == 0 and out.startswith("T-000002 was already closed on 20")


def test_closing_an_unknown_ticket_says_so(store, review):
    code, _, err = review("close", "T-999999")
    assert code == 1 and "no ticket T-999999" in err


def test_no_open_ticket_is_said_on_stderr(store, review):
    for number in ("T-000001", "T-000002", "T-000003"):
        review("close", number)
    code, out, err = review("tickets")
    assert code == 0 and out == "" and "no open tickets" in err


def test_the_store_database_is_named_by_store_db_or_orders_db_url(store, review, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DB_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    code, _, err = review("tickets")
    assert code == 2 and "no SQLite database" in err and "elsewhere.db" in err
    code, out, _ = review("tickets", "--store-db", store)
    assert code == 0 and len(out.splitlines()) == 3
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    code, _, err = review("tickets", "--store-db", f"sqlite:///{empty}")
    assert code == 2 and "no tickets table" in err


def test_forget_deletes_a_visitors_tickets(store):
    assert delete_visitor_rows(store, "visitor-b") == {"tickets": 1}
    with sa.create_engine(store).connect() as connection:
        left = [s for (s,) in connection.execute(sa.text("SELECT sender_id FROM tickets ORDER BY sender_id"))]
    assert left == ["visitor-a", "visitor-c"]
