"""Mask personal data in log records before any handler writes them.

    from privacy import install_log_masking
    logging.basicConfig(...)      # or Rasa's / Sanic's own logging set-up
    install_log_masking()         # afterwards: it filters the handlers that exist now

The filter goes on *handlers*, not loggers: a logger's filters see only the records logged
on that logger itself, while a handler's filters also see every record that propagates to
it from child loggers (``rasa.core.processor``, ``actions.llm_response``, ...).
"""

from __future__ import annotations

import logging
import traceback
from typing import Iterable

from privacy.masking import mask_personal_data

# The root logger, and Sanic's loggers, which have handlers of their own and do not
# propagate to the root in Sanic's default logging configuration.
DEFAULT_LOGGERS = ("", "sanic.access", "sanic.error", "sanic.root")


# What every LogRecord has; any other attribute came from `extra=` (Sanic's access log puts the
# request line in `request`, which its format string prints).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class MaskPersonalData(logging.Filter):
    """Rewrites a record so that its message, traceback, stack and extras hold no personal data.

    The message is formatted first (``msg % args``) and then masked, so personal data in
    arguments is caught too; ``args`` becomes ``()``. The traceback is formatted into
    ``exc_text``, which ``logging.Formatter`` uses instead of formatting ``exc_info`` again.
    Text passed in ``extra=`` is masked too. The record is never dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a wrong format string: leave it to the handler to report
            return True
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


def install_log_masking(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> list[logging.Handler]:
    """Adds one ``MaskPersonalData`` filter to every handler of these loggers (``""`` is the root).

    Idempotent: a handler that already has the filter is left as it is. Returns the handlers
    that are now filtered; handlers added later are not, so call it after logging is set up.
    """
    handlers: list[logging.Handler] = []
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, MaskPersonalData) for existing in handler.filters):
                handler.addFilter(MaskPersonalData())
            if handler not in handlers:
                handlers.append(handler)
    return handlers
