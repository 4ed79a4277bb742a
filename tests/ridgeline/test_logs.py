"""ridgeline.logs: the JSON lines every service can write, the sender hash and the request id."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import warnings

import pytest

from ridgeline import logs
from ridgeline.privacy import MaskPersonalData
from ridgeline.settings import ConfigError


@pytest.fixture
def capture():
    """A logger with one handler writing into a buffer, as a service's root logger has; removed after."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.ridgeline.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    last_resort = logging.lastResort.formatter  # install() gives it the JSON formatter too
    yield logger, handler, stream
    logger.removeHandler(handler)
    logging.lastResort.setFormatter(last_resort)
    logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]  # each line one JSON object


def test_each_line_is_one_json_object_with_every_field(capture):
    logger, handler, stream = capture
    logs.install("actions", logs.LogSettings(logs.LogFormat.JSON), [logger.name])
    with logs.bound(request_id="req-1", sender_id="visitor-42"):
        logger.info("hello %s", "world")
    logger.warning("outside a request\nsecond line of the same record")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message", "service", "sender", "request_id"}
    assert first["time"].endswith("Z") and first["time"][:2] == "20"
    assert (first["level"], first["logger"], first["message"]) == ("INFO", logger.name, "hello world")
    assert (first["service"], first["request_id"]) == ("actions", "req-1")
    assert first["sender"] == hashlib.sha256(b"visitor-42").hexdigest()[:12]
    assert (second["sender"], second["request_id"]) == (None, None)
    assert second["message"] == "outside a request\nsecond line of the same record"


def test_personal_data_is_masked_in_the_message_the_arguments_and_the_traceback(capture):
    logger, handler, stream = capture
    logs.install("rasa", logs.LogSettings(logs.LogFormat.JSON), [logger.name])
    logger.info("mail from anna.berg@example.com about %s", "RG-10421")
    try:
        raise ValueError("bad address anna.berg@example.com")
    except ValueError:
        logger.exception("failed for %s", "+44 20 7946 0321")
    text = stream.getvalue()
    assert "anna.berg@example.com" not in text and "10421" not in text and "7946" not in text
    info, error = lines(stream)
    assert info["message"] == "mail from <email> about <order-id>"
    assert error["message"] == "failed for <phone>"
    assert "ValueError: bad address <email>" in error["exception"]


def test_the_formatter_masks_even_without_the_filter():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "write to %s", ("anna.berg@example.com",), None)
    line = json.loads(logs.JsonFormatter("llm").format(record))
    assert line["message"] == "write to <email>" and line["service"] == "llm"


def test_the_sender_hash_is_salted_per_deployment():
    unsalted = logs.sender_hash("visitor-42")
    assert unsalted == hashlib.sha256(b"visitor-42").hexdigest()[:12]
    salted = logs.sender_hash("visitor-42", "deployment-salt")
    assert len(salted) == 12 and salted != unsalted
    assert salted == logs.sender_hash("visitor-42", "deployment-salt")
    assert salted != logs.sender_hash("visitor-42", "another-salt")
    assert logs.sender_hash("visitor-43", "deployment-salt") != salted
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    with logs.bound(request_id="r", sender_id="visitor-42"):
        assert json.loads(logs.JsonFormatter("rasa", "deployment-salt").format(record))["sender"] == salted


def test_the_hash_command_uses_the_salt_of_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("LOG_SENDER_SALT", "deployment-salt")
    assert logs.main(["sender-hash", "visitor-42"]) == 0
    assert capsys.readouterr().out.strip() == logs.sender_hash("visitor-42", "deployment-salt")


@pytest.mark.parametrize("header, kept", [("turn-1.a_B", True), ("x" * 64, True), ("", False), (None, False),
                                          ("x" * 65, False), ("a b", False), ("id\n{\"level\": 1}", False),
                                          ("anna@example.com", False)])
def test_a_request_id_from_a_header_is_kept_only_when_it_is_short_and_plain(header, kept):
    result = logs.request_id_from(header)
    if kept:
        assert result == header
    else:
        assert result != header and len(result) == 32 and int(result, 16) >= 0


def test_a_bound_request_id_reaches_tasks_started_inside_and_ends_with_its_block():
    async def turn(request_id: str) -> tuple:
        with logs.bound(request_id=request_id, sender_id=f"s-{request_id}"):
            await asyncio.sleep(0)
            inner = await asyncio.create_task(asyncio.sleep(0, result=logs.current_request_id()))
            return logs.current_request_id(), inner, logs.current_sender_id()

    async def both():
        return await asyncio.gather(turn("a"), turn("b"))

    assert asyncio.run(both()) == [("a", "a", "s-a"), ("b", "b", "s-b")]  # concurrent turns keep their own
    assert logs.current_request_id() is None and logs.current_sender_id() is None


def test_text_stays_the_default_and_keeps_each_handlers_format(capture):
    logger, handler, stream = capture
    settings = logs.LogSettings.from_env({})
    assert settings.format is logs.LogFormat.TEXT and settings.sender_salt == ""
    assert handler in logs.install("llm", settings, [logger.name])
    logger.info("mail anna.berg@example.com")
    assert stream.getvalue() == f"INFO {logger.name}: mail <email>\n"  # masked as before, not JSON
    assert any(isinstance(f, MaskPersonalData) for f in handler.filters)


def test_install_is_idempotent_and_covers_handlers_added_later(capture):
    logger, handler, stream = capture
    json_settings = logs.LogSettings.from_env({"LOG_FORMAT": "JSON", "LOG_SENDER_SALT": "s"})
    logs.install("rasa", json_settings, [logger.name])
    formatter = handler.formatter
    assert isinstance(logging.lastResort.formatter, logs.JsonFormatter)  # lines of loggers with no handler
    assert warnings.showwarning.__module__ == "logging"  # Python's warnings become log lines too
    later = logging.StreamHandler(io.StringIO())
    logger.addHandler(later)
    try:
        logs.install("rasa", json_settings, [logger.name])
        assert handler.formatter is formatter  # kept, not replaced
        assert isinstance(later.formatter, logs.JsonFormatter)
        assert sum(isinstance(f, MaskPersonalData) for f in handler.filters) == 1
    finally:
        logger.removeHandler(later)


def test_an_unknown_format_stops_the_service_with_a_sentence():
    with pytest.raises(ConfigError, match=r"LOG_FORMAT='xml' is not valid; use one of text, json"):
        logs.LogSettings.from_env({"LOG_FORMAT": "xml"})
    assert "salt" not in repr(logs.LogSettings.from_env({"LOG_SENDER_SALT": "salt"}))
