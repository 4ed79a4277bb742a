"""Personal data in log lines becomes placeholders; the numbers logs are full of stay."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ridgeline.privacy import DEFAULT_LOGGERS, SANIC_LOGGERS, MaskPersonalData, install_log_masking, mask_personal_data

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
    # percent-encoded emails, as access logs print them in paths and query strings
    ("GET /conversations/anna%40example.com/tracker", "GET /conversations/<email>/tracker"),
    ("?sender=anna.berg%2Bshop%40mail.example.co.uk&x=1", "?sender=<email>&x=1"),
    # order ids in the other shapes ridgeline.shapes.ORDER_ID accepts: rg, spaces/dashes/underscores, 5 digits
    ("RG - 10421 and RG--10422", "<order-id> and <order-id>"),
    ("rg__10421, RG -_ 10422, rg\t10423", "<order-id>, <order-id>, <order-id>"),
    # credentials
    ("POST /webhooks/rest/webhook?token=s3cr3t&x=1", "POST /webhooks/rest/webhook?token=<token>&x=1"),
    ("GET /status?x=1&token=s3cr3t HTTP/1.1", "GET /status?x=1&token=<token> HTTP/1.1"),
    ("redirect?access_token=abc.DEF-123#frag", "redirect?access_token=<token>#frag"),
    ("Authorization: Bearer sk-live-123", "Authorization: Bearer <token>"),
    ("{'authorization': 'Basic dXNlcjpwYXNz', 'x': 1}", "{'authorization': 'Basic <token>', 'x': 1}"),
    ("authorization=opaque-value next", "authorization=<token> next"),
    ("sent Bearer abc/DEF+ghi== upstream", "sent Bearer <token> upstream"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.Sfl_KxwRJ-SMeKKF2QT4fwpMeJf36POk6yJV_adQssw ok",
     "jwt <token> ok"),
    ("unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbm5hIn0.", "unsigned <token>"),
    ("?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.sig&x=1", "?token=<token>&x=1"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.sig", "Authorization: Bearer <token>"),
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
    "call 5551234567 or 15551234567",  # no separators, no leading 0 or +: an id or a count (docs/security.md)
    "rg 1042 and rg-104211 and org-10421",  # not five digits, or inside a word
    "usage prompt_tokens=30 max_tokens=512 tokens=12",  # the LLM's token counts are not credentials
    "the bearer of good news; Authorization: <token>",  # prose, and a value masked already
    "100% of 40 items, 50%off",  # percent signs
    "eyJhbGciOiJIUzI1NiJ9 alone",  # one part: not a JWT
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
    start = time.perf_counter()
    for text in ("1 " * 20000 + "x", "9" * 100000 + ":", "12.34." * 10000 + "5a", ("x" * 50 + "@") * 2000,
                 "%40" * 30000 + "a", ("a%2B" * 10 + "%40b") * 2000, "rg" + " -_" * 30000, "rg " * 30000,
                 "eyJ" + "a" * 100000, "eyJa." * 20000, "token=" * 15000, "Authorization: " * 7000,
                 "Bearer " * 14000, "a" * 100000 + "%40"):
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
    saved = parent.level, parent.propagate, list(parent.filters)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    parent.addHandler(handler)
    yield parent, logging.getLogger("shop.orders"), stream
    parent.removeHandler(handler)
    parent.level, parent.propagate, parent.filters = saved


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


def test_wrong_format_string_keeps_message_and_arguments_masked(logged):
    parent, _, stream = logged
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, "%d items for %s", ("many", "a@b.co"), None)
    assert MaskPersonalData().filter(record) is True
    assert (record.msg, record.args) == ("'%d items for %s' ('many', '<email>')", ())
    # Through a handler: no "--- Logging error ---" that would print msg and args raw.
    install_log_masking(["shop"])
    parent.info("order %d for %s", "RG-10421", "anna.berg@example.com")
    assert stream.getvalue() == "shop INFO 'order %d for %s' ('<order-id>', '<email>')\n"


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


# ------------------------------------------- install_log_masking(): loggers whose handlers come later

@pytest.fixture
def saved_logging(monkeypatch):
    """Puts back what install_log_masking() and these tests change on the root, Sanic's loggers and lastResort."""
    loggers = [logging.getLogger(name) for name in DEFAULT_LOGGERS]
    for logger in loggers:
        for attribute in ("filters", "handlers"):
            monkeypatch.setattr(logger, attribute, list(getattr(logger, attribute)))
        monkeypatch.setattr(logger, "propagate", logger.propagate)
        monkeypatch.setattr(logger, "level", logger.level)
        for handler in logger.handlers:  # pytest's own handlers sit on the root for the whole session
            monkeypatch.setattr(handler, "filters", list(handler.filters))
    monkeypatch.setattr(logging, "lastResort", logging.lastResort)
    monkeypatch.setattr(logging.lastResort, "filters", list(logging.lastResort.filters))
    yield
    logging.getLogger().manager._clear_cache()  # levels were put back behind the loggers' caches


def _masking_filters(filterer: logging.Filterer) -> int:
    return sum(isinstance(f, MaskPersonalData) for f in filterer.filters)


def test_sanic_loggers_are_masked_by_handlers_added_after_install(saved_logging):
    """Rasa's set-up after start-up: a handler per Sanic logger, which stops propagating to the root."""
    install_log_masking()
    stream = io.StringIO()
    for name in SANIC_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(
            "%(host)s %(request)s %(message)s%(status)s" if name == "sanic.access" else "%(name)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.getLogger("sanic.root").info("Goin' Fast for %s", "anna.berg@example.com")
    logging.getLogger("sanic.server").info("connection from +44 20 7946 0321")
    logging.getLogger("sanic.websockets").info("ws %s", "/ws?token=s3cr3t")
    logging.getLogger("sanic.access").info("", extra={
        "host": "127.0.0.1:40312", "status": 200,
        "request": "GET http://localhost:5005/conversations/anna%40example.com/tracker?token=s3cr3t"})
    try:
        raise KeyError("no tracker for rg10421")
    except KeyError:
        logging.getLogger("sanic.error").exception("Exception occurred while handling uri: %r",
                                                   "http://localhost:5005/conversations/anna%40example.com/tracker")
    output = stream.getvalue()
    assert output.splitlines()[:4] == [
        "sanic.root Goin' Fast for <email>",
        "sanic.server connection from <phone>",
        "sanic.websockets ws /ws?token=<token>",
        "127.0.0.1:40312 GET http://localhost:5005/conversations/<email>/tracker?token=<token> 200",
    ]
    assert "while handling uri: 'http://localhost:5005/conversations/<email>/tracker'" in output
    assert "KeyError: 'no tracker for <order-id>'" in output
    assert "anna" not in output and "s3cr3t" not in output and "10421" not in output
    # The loggers' own filters did it: the handlers, added after install, have none.
    for name in SANIC_LOGGERS:
        assert [_masking_filters(h) for h in logging.getLogger(name).handlers] == [0]


def test_records_that_find_no_handler_reach_last_resort_masked(saved_logging, monkeypatch):
    """The action server's Sanic loggers have no handlers: logging falls back to lastResort (stderr)."""
    install_log_masking()
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)  # lastResort looks sys.stderr up when it writes
    lonely = logging.getLogger("shop.lonely")
    monkeypatch.setattr(lonely, "propagate", False)
    server = logging.getLogger("sanic.server")
    server.handlers, server.propagate = [], False
    lonely.warning("no handler for %s", "anna.berg@example.com")
    server.error("bad request %s from %s", "/conversations/anna%40example.com/tracker?token=s3cr3t",
                 "+44 20 7946 0321")
    assert stderr.getvalue().splitlines() == [
        "no handler for <email>",
        "bad request /conversations/<email>/tracker?token=<token> from <phone>",
    ]


def test_install_is_idempotent_and_cheap(saved_logging):
    root_handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(root_handler)
    start = time.perf_counter()
    for _ in range(1000):
        handlers = install_log_masking()
    assert time.perf_counter() - start < 1
    assert root_handler in handlers
    assert _masking_filters(root_handler) == 1 and _masking_filters(logging.lastResort) == 1
    assert _masking_filters(logging.getLogger()) == 0  # the root's handlers carry it
    assert [_masking_filters(logging.getLogger(name)) for name in SANIC_LOGGERS] == [1] * len(SANIC_LOGGERS)


_SANIC_APP = """
import logging
from ridgeline.privacy import install_log_masking
install_log_masking()  # before the app exists, as ridgeline_rasa.channels does
from sanic import Sanic
Sanic("rasa_server")  # Sanic's logging.config.dictConfig: new handlers on its loggers
for name in ("sanic.root", "sanic.error", "sanic.access"):  # and Rasa's update_sanic_log_level()
    logging.getLogger(name).propagate = False
logging.getLogger("sanic.root").info("Starting for %s", "anna.berg@example.com")
logging.getLogger("sanic.error").error("Exception for uri: %r", "/conversations/anna%40example.com/tracker")
logging.getLogger("sanic.access").info("", extra={
    "status": 200, "byte": 12, "host": "127.0.0.1:1", "duration": "",
    "request": "GET http://x/conversations/anna%40example.com/tracker?token=s3cr3t"})
"""
# Rasa's virtualenv: RASA_VENV as the Makefile and CI set it, else the checkout's .venv-rasa.
_RASA_PYTHON = Path(os.environ.get("RASA_VENV") or Path(__file__).resolve().parents[2] / ".venv-rasa") / "bin" / "python"


@pytest.mark.parametrize("python", [
    pytest.param(sys.executable, id="action-server-sanic"),
    pytest.param(str(_RASA_PYTHON), id="rasa-sanic"),
])
def test_a_real_sanic_app_created_after_install_logs_masked(python):
    if not Path(python).exists():
        pytest.fail(f"{python} is missing: run `make setup` (make test does)")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([python, "-c", _SANIC_APP], cwd=root, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(root)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("<email>") >= 3 and "token=<token>" in output, output  # logged, and masked
    assert "anna" not in output and "s3cr3t" not in output, output
