"""Log lines that can be followed across the services: one JSON formatter, the sender hash, the request id.

    from ridgeline import logs
    settings = logs.LogSettings.from_env(env)           # in the service's settings module
    logs.install("actions", settings)                   # after its logging set-up; idempotent
    with logs.bound(request_id=..., sender_id=...):     # around one turn / one call
        ...                                             # every line logged in here carries both

With ``LOG_FORMAT=json`` every handler of the root logger and of Sanic's loggers (and
``logging.lastResort``) writes one JSON object per line::

    {"time": "2025-01-31T12:00:00.123Z", "level": "INFO", "logger": "actions.llm_client",
     "message": "LLM reply in 0.84 s (212 chars)", "service": "actions",
     "sender": "5f2b9c0e1a7d", "request_id": "3e0c6b1f9d2a4c7e8b5a0f1d2c3b4a59"}

plus ``exception`` (the traceback) or ``stack`` when the record has one. The message is masked
(``ridgeline.privacy``) here too, so a handler without the masking filter still writes none.
Python's warnings are logged (``logging.captureWarnings``), so they are JSON lines too.
``LOG_FORMAT=text`` (the default) leaves every handler's formatter, and the warnings, as they are.

The request id is made where a message enters Rasa (the channel gate), or taken from the
channel's ``X-Request-ID`` header; Rasa sends it to the action server and the action server to
the LLM service in the same header (``REQUEST_ID_HEADER``); each service binds it for the work it
does for that request (a ``contextvars.ContextVar``: asyncio tasks started inside inherit it).

The sender is never logged, only ``sender_hash``: the first 12 hex digits of HMAC-SHA-256 of the
sender id keyed with ``LOG_SENDER_SALT``, or of plain SHA-256 when the salt is unset. Unsalted,
anyone who knows a sender id finds that conversation's lines (``python -m ridgeline.logs
sender-hash ID``), and anyone who can guess ids (Telegram chat ids, Slack user ids are short
numbers and codes) can find whose lines these are by trying them; salted, only who holds the
salt can do either. Set the same salt in every service of a deployment, or the hashes differ.
Standard library only (Python 3.10+), for both runtimes.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Iterable, Iterator, Mapping, Optional, Sequence

from ridgeline.privacy import DEFAULT_LOGGERS, install_log_masking, mask_personal_data
from ridgeline.settings import parse_enum

# The variables every service reads for its logs (each service's settings module reads them).
VARIABLES = ("LOG_FORMAT", "LOG_SENDER_SALT")
REQUEST_ID_HEADER = "X-Request-ID"
SENDER_HASH_CHARS = 12
# What a request id taken from a header may be: short, and nothing a log reader could misread.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_request_id: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("ridgeline_request_id", default=None)
_sender_id: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("ridgeline_sender_id", default=None)


class LogFormat(str, Enum):
    TEXT = "text"  # each handler's own format (make run, docker compose)
    JSON = "json"  # one JSON object per line, for Loki / Elasticsearch (the chart's default)


@dataclass(frozen=True)
class LogSettings:
    format: LogFormat = LogFormat.TEXT
    sender_salt: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LogSettings":
        raw = (env.get("LOG_FORMAT") or "").strip() or cls.format.value
        return cls(format=parse_enum(LogFormat, raw, "LOG_FORMAT", ignore_case=True),
                   sender_salt=env.get("LOG_SENDER_SALT") or "")


# ---------------------------------------------------------------- the request id and the sender

def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: Optional[str]) -> str:
    """``header`` when it is a usable request id (1-64 of ``A-Za-z0-9._-``), else a new one."""
    value = (header or "").strip()
    return value if _REQUEST_ID.fullmatch(value) else new_request_id()


def current_request_id() -> Optional[str]:
    """The request id bound in this context (``bound``), or None outside any request."""
    return _request_id.get()


def current_sender_id() -> Optional[str]:
    return _sender_id.get()


@contextlib.contextmanager
def bound(*, request_id: Optional[str], sender_id: Optional[str] = None) -> Iterator[Optional[str]]:
    """Bind ``request_id`` and ``sender_id`` to every line logged in this block (and in tasks it starts)."""
    request_token = _request_id.set(request_id)
    sender_token = _sender_id.set(sender_id)
    try:
        yield request_id
    finally:
        _sender_id.reset(sender_token)
        _request_id.reset(request_token)


def bind(*, request_id: Optional[str], sender_id: Optional[str] = None) -> None:
    """Bind both for the rest of this context (a Sanic request's middleware, which has no block to wrap).

    Bind on every request, ``None`` included: keep-alive requests of one connection share a task.
    """
    _request_id.set(request_id)
    _sender_id.set(sender_id)


def sender_hash(sender_id: str, salt: str = "") -> str:
    """The first 12 hex digits of HMAC-SHA-256(salt, sender id), or of SHA-256(sender id) without a salt."""
    data = sender_id.encode("utf-8", "surrogatepass")
    digest = (hmac.new(salt.encode("utf-8"), data, hashlib.sha256) if salt else hashlib.sha256(data)).hexdigest()
    return digest[:SENDER_HASH_CHARS]


# ---------------------------------------------------------------- the JSON lines

class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, service, sender (hash), request_id."""

    def __init__(self, service: str, sender_salt: str = "") -> None:
        super().__init__()
        self.service = service
        self._salt = sender_salt

    def format(self, record: logging.LogRecord) -> str:
        sender = current_sender_id()
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_personal_data(_message(record)),
            "service": self.service,
            "sender": sender_hash(sender, self._salt) if sender is not None else None,
            "request_id": current_request_id(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = mask_personal_data(record.exc_text)
        if record.stack_info:
            line["stack"] = mask_personal_data(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a wrong format string: keep what it says (masked by the caller)
        return f"{record.msg!r} {record.args!r}"


def install(service: str, settings: LogSettings, logger_names: Iterable[str] = DEFAULT_LOGGERS) -> list[logging.Handler]:
    """Mask every line of these loggers' handlers and, with ``LOG_FORMAT=json``, write them as JSON lines.

    Idempotent and cheap, like ``install_log_masking``: call it again after any later logging set-up
    (a handler added since gets the formatter; one that has it keeps it). Returns the handlers.
    """
    names = tuple(logger_names)
    handlers = install_log_masking(names)
    if settings.format is LogFormat.JSON:
        logging.captureWarnings(True)  # Python's warnings, too, as lines of the "py.warnings" logger
        targets = [*handlers, *([logging.lastResort] if logging.lastResort is not None else [])]
        for handler in targets:
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter(service, settings.sender_salt))
    return handlers


# ---------------------------------------------------------------- python -m ridgeline.logs sender-hash ID

def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m ridgeline.logs sender-hash ID``: the ``sender`` of ID's log lines (salt: LOG_SENDER_SALT)."""
    parser = argparse.ArgumentParser(prog="python -m ridgeline.logs", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("sender-hash", help="the hash a sender id has in the JSON logs")
    command.add_argument("sender_id")
    args = parser.parse_args(argv)
    print(sender_hash(args.sender_id, LogSettings.from_env(os.environ).sender_salt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
