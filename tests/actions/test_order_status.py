"""The order form's validation and look-up against a real SQLite database."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import orders_db
from actions.order_status import ActionCheckOrderStatus, ValidateOrderStatusForm
from tests.actions.conftest import make_tracker, user


@pytest.mark.parametrize(
    "typed, expected",
    [("RG-10421", "RG-10421"), ("rg10421", "RG-10421"), ("#RG 10421", "RG-10421"), ("rg_10421 ", "RG-10421"),
     ("10421", None), ("RG-1042", None), ("RG-104211", None), ("", None)],
)
def test_order_ids_are_normalised(typed, expected):
    assert orders_db.normalize_order_id(typed) == expected


@pytest.mark.parametrize(
    "typed, expected",
    [("Anna.Berg@Example.com", "anna.berg@example.com"), ("<a@b.io>", "a@b.io"), ("anna", None), ("a@b", None)],
)
def test_emails_are_normalised(typed, expected):
    assert orders_db.normalize_email(typed) == expected


def test_sample_orders_are_seeded_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'orders.db'}"
    engine = orders_db.connect(url, seed_sample=True)
    orders_db.connect(url, seed_sample=True)  # a second start must not duplicate or fail
    assert orders_db.find_order(engine, "RG-10421").email == "anna.berg@example.com"
    assert orders_db.find_order(engine, "RG-99999") is None


def test_unseeded_database_is_empty(tmp_path):
    engine = orders_db.connect(f"sqlite:///{tmp_path / 'orders.db'}", seed_sample=False)
    assert orders_db.find_order(engine, "RG-10421") is None


@pytest.mark.parametrize("order", orders_db.load_sample_orders(), ids=lambda o: o.status)
def test_every_status_has_a_sentence(order):
    sentence = orders_db.describe(order)
    assert sentence.startswith(f"Your order {order.order_id}") and sentence.endswith(".")


def check(config, order_id, email):
    dispatcher = CollectingDispatcher()
    tracker = make_tracker([user("where is my order")], {"order_id": order_id, "email": email})
    events = asyncio.run(ActionCheckOrderStatus(config).run(dispatcher, tracker, {}))
    assert {(e["name"], e["value"]) for e in events} == {("order_id", None), ("email", None)}
    return [m.get("text") or m.get("response") for m in dispatcher.messages]


def test_known_order_with_matching_email_gets_status_and_dates(llm_config):
    [text] = check(llm_config, "RG-10421", "Anna.Berg@example.com")
    assert text == (
        "Your order RG-10421 (Trailblazer 2 tent, Ridgeline down sleeping bag -7C), placed on "
        "18 Nov 2026, was shipped on 20 Nov 2026 with DPD and is expected on 24 Nov 2026."
    )


def test_unknown_order_gets_a_clear_answer(llm_config):
    [text] = check(llm_config, "RG-99999", "anna.berg@example.com")
    assert "couldn't find an order RG-99999" in text


def test_email_mismatch_reveals_nothing_about_the_order(llm_config):
    [text] = check(llm_config, "RG-10421", "someone.else@example.com")
    assert "doesn't match" in text and "Trailblazer" not in text


def test_database_down_gets_an_apology_not_a_stack_trace(tmp_path):
    from actions.config import ActionServerConfig

    config = ActionServerConfig(orders_db_url="postgresql+psycopg://nobody@127.0.0.1:9/orders")
    [text] = check(config, "RG-10421", "anna.berg@example.com")
    assert "can't reach our order system" in text


def validate(slot, value):
    dispatcher = CollectingDispatcher()
    form = ValidateOrderStatusForm()
    method = getattr(form, f"validate_{slot}")
    result = asyncio.run(method(value, dispatcher, make_tracker([user(str(value))]), {}))
    return result, [m["response"] for m in dispatcher.messages]


def test_form_normalises_a_valid_order_id_and_takes_the_first_of_two():
    assert validate("order_id", "rg 10422") == ({"order_id": "RG-10422"}, [])
    assert validate("order_id", ["RG-10423", "RG-10421"]) == ({"order_id": "RG-10423"}, [])


def test_form_rejects_malformed_values_and_asks_again():
    assert validate("order_id", "12345") == ({"order_id": None}, ["utter_invalid_order_id"])
    assert validate("email", "not-an-email") == ({"email": None}, ["utter_invalid_email"])
