"""Mask personal data in log records before any handler writes them.

    from ridgeline.privacy import install_log_masking
    logging.basicConfig(...)      # or Rasa's / Sanic's own logging set-up
    install_log_masking()         # safe to call again after any later logging set-up

Where the filter goes, and why:

- on every *handler* of the root logger: a handler's filters see every record that
  propagates to it from child loggers (``rasa.core.processor``, ``actions.llm_response``,
  ...), which a logger's own filters do not;
- on Sanic's *loggers* themselves (``sanic.root``, ``sanic.error``, ``sanic.access``,
  ``sanic.server``, ``sanic.websockets``): Sanic logs on exactly these, and their handlers
  come later or never (Rasa creates its Sanic app and sets ``propagate = False`` on them
  after start-up; the action server gives them none), and a logger's filters see every
  record logged on it whatever handlers it gets afterwards. ``logging.config.dictConfig``
  replaces a logger's handlers but keeps its filters;
- on ``logging.lastResort``, which writes the warnings of a logger that finds no handler at all.

Handlers added later to the root logger, or to another logger that does not propagate, are
not covered: call ``install_log_masking()`` again after such a set-up (it is idempotent and cheap).
"""

from __future__ import annotations

import logging
import traceback
from typing import Iterable

from ridgeline.privacy.masking import mask_personal_data

# Sanic's loggers (sanic.log / sanic.logging.loggers), which Sanic and Rasa configure not to
# propagate to the root logger.
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")
# The root logger, and Sanic's loggers.
DEFAULT_LOGGERS = ("", *SANIC_LOGGERS)


# What every LogRecord has; any other attribute came from `extra=` (Sanic's access log puts the
# request line in `request`, which its format string prints).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class MaskPersonalData(logging.Filter):
    """Rewrites a record so that its message, traceback, stack and extras hold no personal data.

    The message is formatted first (``msg % args``) and then masked, so personal data in
    arguments is caught too; ``args`` becomes ``()``. A message that cannot be formatted
    (``logger.info("%d", "x")``) becomes ``repr(msg) repr(args)``, masked: logging would
    otherwise print both raw when it reports the error. The traceback is formatted into
    ``exc_text``, which ``logging.Formatter`` uses instead of formatting ``exc_info`` again.
    Text passed in ``extra=`` is masked too. The record is never dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a wrong format string: keep what it says, masked
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask_personal_data(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal_data(record.stack_info)
        for name, value in list(vars(record).items()):
            if isinstance(value, str) and name not in _RECORD_ATTRIBUTES:
                setattr(record, name, mask_personal_data(value))
        return True


def _add_filter_once(target: logging.Filterer) -> None:
    if not any(isinstance(existing, MaskPersonalData) for existing in target.filters):
        target.addFilter(MaskPersonalData())


def install_log_masking(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> list[logging.Handler]:
    """Masks what these loggers (``""`` is the root) and ``logging.lastResort`` write.

    Adds one ``MaskPersonalData`` filter to every handler these loggers have now, to each of
    these loggers other than the root (so their handlers added later are covered too), and to
    ``logging.lastResort``. Idempotent: a handler or logger that has the filter already is left
    as it is. Returns the loggers' handlers that are now filtered.
    """
    handlers: list[logging.Handler] = []
    for name in dict.fromkeys(logger_names):
        logger = logging.getLogger(name)
        if name:  # the root's own filters would see only records logged on the root itself
            _add_filter_once(logger)
        for handler in logger.handlers:
            _add_filter_once(handler)
            if handler not in handlers:
                handlers.append(handler)
    if logging.lastResort is not None:
        _add_filter_once(logging.lastResort)
    return handlers
