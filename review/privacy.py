"""What the review tool prints or writes has personal data masked (``ridgeline.privacy``).

Unmasked output needs ``--unmasked`` together with ``--token`` equal to ``RASA_AUTH_TOKEN``: that
token already opens every conversation, unmasked, through Rasa's HTTP API
(``GET /conversations/{id}/tracker?token=...``), so asking for it lets through no one who could not
read the same data already, and a designer's ordinary runs never show it.

The exports (NLU examples, test stories) are meant to become training data and tests: there a
masked value becomes a stand-in of the same shape (``<order-id>`` -> ``RG-00000``), so that the
regexes and entity extractors still see an order id, an email, a phone or a card number.
"""

from __future__ import annotations

import sys
from typing import Any

from ridgeline.access import same_secret
from ridgeline.privacy import CARD, EMAIL, ORDER_ID, PHONE, TOKEN, mask_personal_data
from ridgeline.settings import ConfigError

STAND_INS = {
    EMAIL: "visitor@example.com",
    ORDER_ID: "RG-00000",
    PHONE: "+44 20 7946 0000",
    CARD: "4242 4242 4242 4242",  # a well-known test card number (passes the Luhn check)
    TOKEN: "TOKEN",
}


class Masker:
    def __init__(self, unmasked: bool = False) -> None:
        self.unmasked = unmasked

    def __call__(self, text: str) -> str:
        return text if self.unmasked else mask_personal_data(text)

    def value(self, value: Any) -> Any:
        """A slot or entity value, masked wherever it holds text."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def export(self, value: Any) -> Any:
        """``value`` for training data: masked, and each placeholder replaced by its stand-in."""
        value = self.value(value)
        if self.unmasked:
            return value
        if isinstance(value, str):
            for placeholder, stand_in in STAND_INS.items():
                value = value.replace(placeholder, stand_in)
            return value
        if isinstance(value, list):
            return [self.export(v) for v in value]
        if isinstance(value, dict):
            return {k: self.export(v) for k, v in value.items()}
        return value


def masker(unmasked: bool, token: str | None, expected: str) -> Masker:
    """The masking for this run; ``--unmasked`` without the right ``--token`` is refused.

    ``--token -`` reads the token from standard input (not from the command line, where other
    users of the machine and the shell history could see it).
    """
    if not unmasked:
        return Masker(False)
    if token == "-":
        token = sys.stdin.readline().strip()
    if not expected:
        raise ConfigError("--unmasked needs RASA_AUTH_TOKEN set (Rasa's API token, which already reads every "
                          "conversation unmasked); without it, output stays masked.")
    if not token or not same_secret(token, expected):
        raise ConfigError("--unmasked needs --token equal to RASA_AUTH_TOKEN (Rasa's API token); "
                          "the token given is missing or wrong.")
    return Masker(True)
