"""Secrets compared in constant time, and the ``Authorization: Bearer <token>`` header.

Every check of a token, an API key, a webhook secret or a signature goes through
``same_secret``, so none can leak its value through how long a comparison takes.
"""

from __future__ import annotations

import hmac


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def same_secret(given: str | bytes, expected: str | bytes) -> bool:
    """Whether ``given`` equals ``expected``, in a time that does not depend on where they differ."""
    return hmac.compare_digest(_bytes(given), _bytes(expected))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any case of ``Bearer``), else ``None``."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def bearer_matches(authorization: str | None, expected: str | bytes) -> bool:
    """Whether the header carries ``expected`` as its bearer token."""
    token = bearer_token(authorization)
    return token is not None and same_secret(token, expected)
