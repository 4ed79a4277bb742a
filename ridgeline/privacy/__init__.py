"""Personal data masking for logs (standard library only; Python 3.10+, so Rasa can use it too).

- ``mask_personal_data(text)``: emails, phone numbers, order ids, card numbers and
  credentials (tokens, Authorization headers, JWTs) -> placeholders;
- ``MaskPersonalData``: a ``logging.Filter`` that masks a record's message, traceback and stack;
- ``install_log_masking(logger_names)``: puts that filter on the root logger's handlers,
  on Sanic's loggers and on ``logging.lastResort``.
"""

from ridgeline.privacy.log_filter import DEFAULT_LOGGERS, SANIC_LOGGERS, MaskPersonalData, install_log_masking
from ridgeline.privacy.masking import CARD, EMAIL, ORDER_ID, PHONE, TOKEN, mask_personal_data

__all__ = ["CARD", "DEFAULT_LOGGERS", "EMAIL", "ORDER_ID", "PHONE", "SANIC_LOGGERS", "TOKEN", "MaskPersonalData",
           "install_log_masking", "mask_personal_data"]
