"""Personal data in log lines becomes placeholders; the numbers logs are full of stay."""

from __future__ import annotations

import io
import logging

import pytest

from privacy import MaskPersonalData, install_log_masking, mask_personal_data

MASKED = [
    # emails
    ("mail anna.berg@example.com now", "mail <email> now"),
    ("It's Anna.Berg+shop@mail.example.co.uk.", "It's <email>."),
    ('{"email": "j_doe-99@ridge.example"}', '{"email": "<email>"}'),
    # order ids, in every form the assistant accepts
    ("where is RG-10421?", "where is <order-id>?"),
    ("rg10422, RG 10423 and Rg_10424", "<order-id>, <order-id> and <order-id>"),
    ("order #rg-10421.", "order #<order-id>."),
    # phone numbers
    ("call +44 20 7946 0321 today", "call <phone> today"),
    ("+44 (0)20 7946 0321", "<phone>"),
    ("sender whatsapp:+4915112345678", "sender whatsapp:<phone>"),
    ("+1-555-123-4567", "<phone>"),
    ("0049 151 12345678", "<phone>"),
    ("ring (555) 123-4567 or 555-123-4567", "ring <phone> or <phone>"),
    ("555.123.4567", "<phone>"),
    ("030.1234.5678", "<phone>"),
    ("mobile 07700 900123", "mobile <phone>"),
    ("(call 0301234567.)", "(call <phone>.)"),
    # card numbers (Luhn-valid)
    ("card 4111 1111 1111 1111 was charged", "card <card> was charged"),
    ("4111-1111-1111-1111", "<card>"),
    ("pan=4111111111111111", "pan=<card>"),
    ("amex 3782 822463 10005", "amex <card>"),
    ("mc 5555 5555 5555 4444!", "mc <card>!"),
    # several kinds in one line, around numbers that stay
    ("Order RG-10423 ships 2026-11-06, total 149.90 EUR; call +44 20 7946 0321 or mail a@b.co",
     "Order <order-id> ships 2026-11-06, total 149.90 EUR; call <phone> or mail <email>"),
]

KEPT = [
    "2026-11-06 12:34:56,789 INFO rasa.core.processor",  # timestamps
    "delivery on 06.11.2026 or 11/06/2026",  # dates
    "open 09:00-17:00, Sat 10:00-14:00",  # times and ranges
    "price 149.90 EUR, was 1499999.90",  # prices
    "took 0.25 s (budget 20 s)",  # durations
    "listening on 127.0.0.1:5005 and [::1]:5055",  # addresses and ports
    "from 192.168.100.200",
    '"POST /webhooks/rest/webhook HTTP/1.1" 200 1234',  # Sanic's access log: status, bytes
    "status 404, port 8000, pid 1234567",
    "epoch 1764300000, ns 1764300000123456789",  # plain counts and timestamps
    "rasa 3.6.21, torch 2.13.0+cpu, tensorflow 2.12.0",  # versions
    "id 123e4567-e89b-12d3-a456-426614174000",  # uuids
    "telegram chat 123456789",
    "years 2020-2026",
    "4111 1111 1111 1112",  # not Luhn-valid: not a card, too long for a phone
    "RG-104231 and XRG-10421",  # not this shop's order id shape
    "sku 555-1234",  # two groups: too ambiguous to call a phone
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_personal_data_is_masked(text, expected):
    assert mask_personal_data(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_other_numbers_are_kept(text):
    assert mask_personal_data(text) == text


@pytest.mark.parametrize("text", [text for text, _ in MASKED])
def test_masking_twice_changes_nothing(text):
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once


def test_long_inputs_stay_fast():
    import time
    start = time.perf_counter()
    for text in ("1 " * 20000 + "x", "9" * 100000 + ":", "12.34." * 10000 + "5a", ("x" * 50 + "@") * 2000):
        mask_personal_data(text)
    assert time.perf_counter() - start < 2


# ---------------------------------------------------------------- the logging filter

@pytest.fixture
def logged():
    """A logger "shop" with a handler writing to a StringIO, its child "shop.orders", and the output."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    parent = logging.getLogger("shop")
    saved = parent.level, parent.propagate
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    parent.addHandler(handler)
    yield parent, logging.getLogger("shop.orders"), stream
    parent.removeHandler(handler)
    parent.level, parent.propagate = saved


def test_filter_masks_formatted_message_from_child_logger(logged):
    parent, child, stream = logged
    install_log_masking(["shop"])
    child.info("order %s for %s, call %s", "RG-10421", "anna.berg@example.com", "+44 20 7946 0321")
    parent.warning("card %(card)s declined", {"card": "4111 1111 1111 1111"})
    assert stream.getvalue().splitlines() == [
        "shop.orders INFO order <order-id> for <email>, call <phone>",
        "shop WARNING card <card> declined",
    ]


def test_filter_masks_traceback_and_stack(logged):
    parent, child, stream = logged
    install_log_masking(["shop"])
    try:
        raise LookupError("no order for anna.berg@example.com")
    except LookupError:
        child.exception("look-up failed for %s", "RG-10421")
    child.info("where am I, bob@example.org?", stack_info=True)
    output = stream.getvalue()
    assert "LookupError: no order for <email>" in output
    assert "look-up failed for <order-id>" in output
    assert "Traceback (most recent call last)" in output
    assert "Stack (most recent call last)" in output
    assert "@example" not in output and "10421" not in output


def test_filter_masks_extras_like_sanics_access_log(logged):
    parent, _, stream = logged
    parent.handlers[0].setFormatter(logging.Formatter("%(host)s %(request)s %(message)s %(status)s %(byte)s"))
    install_log_masking(["shop"])
    parent.info("", extra={"host": "127.0.0.1:40312", "request": "GET http://localhost:5005/conversations/"
                           "anna.berg@example.com/tracker", "status": 200, "byte": 1234})
    assert stream.getvalue() == "127.0.0.1:40312 GET http://localhost:5005/conversations/<email>/tracker  200 1234\n"


def test_record_is_rewritten_once_and_kept(logged):
    parent, _, _ = logged
    record = parent.makeRecord("shop", logging.INFO, __file__, 1, "mail %s", ("a@b.co",), None)
    assert MaskPersonalData().filter(record) is True
    assert (record.msg, record.args, record.getMessage()) == ("mail <email>", (), "mail <email>")


def test_wrong_format_string_is_left_to_the_handler():
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert MaskPersonalData().filter(record) is True
    assert record.args == ("many",)


def test_install_is_idempotent_and_covers_every_handler(logged):
    parent, _, _ = logged
    second = logging.StreamHandler(io.StringIO())
    parent.addHandler(second)
    try:
        first_time = install_log_masking(["shop", "shop"])
        second_time = install_log_masking(["shop"])
        assert first_time == second_time == parent.handlers
        for handler in parent.handlers:
            assert sum(isinstance(f, MaskPersonalData) for f in handler.filters) == 1
    finally:
        parent.removeHandler(second)


def test_install_defaults_cover_root_and_sanic_loggers():
    stream = io.StringIO()
    root_handler = logging.StreamHandler(stream)
    access_handler = logging.StreamHandler(stream)
    root, access = logging.getLogger(), logging.getLogger("sanic.access")
    root.addHandler(root_handler)
    access.addHandler(access_handler)
    # pytest's own handlers sit on the root logger for the whole session: restore their filters.
    saved = {handler: list(handler.filters) for name in ("", "sanic.access", "sanic.error", "sanic.root")
             for handler in logging.getLogger(name).handlers}
    try:
        handlers = install_log_masking()
        assert root_handler in handlers and access_handler in handlers
        assert any(isinstance(f, MaskPersonalData) for f in root_handler.filters)
        assert any(isinstance(f, MaskPersonalData) for f in access_handler.filters)
    finally:
        for handler, filters in saved.items():
            handler.filters[:] = filters
        root.removeHandler(root_handler)
        access.removeHandler(access_handler)
