"""Personal data masking for logs (standard library only; Python 3.10+, so Rasa can use it too).

- ``mask_personal_data(text)``: emails, phone numbers, order ids, card numbers -> placeholders;
- ``MaskPersonalData``: a ``logging.Filter`` that masks a record's message, traceback and stack;
- ``install_log_masking(logger_names)``: puts that filter on every handler of those loggers.
"""

from privacy.log_filter import DEFAULT_LOGGERS, MaskPersonalData, install_log_masking
from privacy.masking import CARD, EMAIL, ORDER_ID, PHONE, mask_personal_data

__all__ = ["CARD", "DEFAULT_LOGGERS", "EMAIL", "ORDER_ID", "PHONE", "MaskPersonalData", "install_log_masking",
           "mask_personal_data"]
