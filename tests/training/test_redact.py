"""Personal data becomes placeholders; prices, dates, times and the store's own contacts stay."""

from __future__ import annotations

import pytest

from training.config import DEFAULT_ORDER_ID_PATTERN
from training.redact import Redactor

STORE_CONTACTS = ["help@ridgeline-outfitters.example", "+44 20 7946 0321"]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(DEFAULT_ORDER_ID_PATTERN, keep=STORE_CONTACTS)


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("mail me at anna.berg@example.com please", "mail me at <EMAIL> please", {"email": 1}),
        ("It's Anna.Berg+shop@mail.example.co.uk.", "It's <EMAIL>.", {"email": 1}),
        ("where is RG-10421?", "where is <ORDER_ID>?", {"order_id": 1}),
        ("orders rg10422 and RG-10423", "orders <ORDER_ID> and <ORDER_ID>", {"order_id": 2}),
        ("call +44 7700 900123 today", "call <PHONE> today", {"phone": 1}),
        ("my number is 020 7946 0018.", "my number is <PHONE>.", {"phone": 1}),
        ("ring (555) 123-4567 or 555-123-4567", "ring <PHONE> or <PHONE>", {"phone": 2}),
        ("card 4111 1111 1111 1111 was charged", "card <CARD_NUMBER> was charged", {"card_number": 1}),
    ],
)
def test_personal_data_is_replaced(redactor, text, expected, kinds):
    redacted, counts = redactor.redact(text)
    assert redacted == expected
    assert dict(counts) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "UK delivery costs GBP 3.95 and is free over GBP 60.",
        "We answer 08:00-18:00, Monday to Friday, and shipped it on 2024-05-17.",
        "Returns within 30 days; a 2-year warranty; 5 working days.",
        "Email help@ridgeline-outfitters.example or call +44 20 7946 0321.",
        "Order number format: RG- followed by five digits.",
        "Tent 1234567 is not a phone number without separators.",
        "The Fourth Republic lasted 1946-1958, the war (1939 - 1945) before it.",  # year ranges (SQuAD passages)
    ],
)
def test_ordinary_numbers_and_store_contacts_stay(redactor, text):
    assert redactor.redact(text) == (text, {})


def test_order_id_pattern_is_configurable():
    redacted, counts = Redactor(r"ORD\d{4}").redact("ORD1234 and RG-10421")
    assert redacted == "<ORDER_ID> and RG-10421"
    assert counts["order_id"] == 1


def test_prices_next_to_numbers_are_not_read_as_a_phone_number(redactor):
    text = "The Trailhead 2 (RO-10003) is £129.00 (420 g lighter) or €150.95; call 020 7946 0999."
    redacted, counts = redactor.redact(text)
    assert redacted == "The Trailhead 2 (RO-10003) is £129.00 (420 g lighter) or €150.95; call <PHONE>."
    assert counts == {"phone": 1}
