"""What every service's settings share: one ``ConfigError`` and one way to read a choice.

A setting is named as the user wrote it: a flag (``--dtype``) is followed by its value, an
environment variable or a file's key is assigned it (``LLM_DEVICE='tpu'``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

E = TypeVar("E", bound=Enum)


class ConfigError(ValueError):
    """A setting (flag, environment variable or config file value) is invalid; the message says what to change."""


def given(setting: str, value: Any) -> str:
    """``--dtype 'x'`` for a flag, ``LLM_DTYPE='x'`` for a variable or a key."""
    return f"{setting} {value!r}" if setting.startswith("-") else f"{setting}={value!r}"


def parse_enum(kind: type[E], value: Any, setting: str, *, ignore_case: bool = False) -> E:
    """``kind(value)``, or a ``ConfigError`` naming ``setting`` and every valid choice."""
    key = value.lower() if ignore_case and isinstance(value, str) else value
    try:
        return kind(key)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise ConfigError(f"{given(setting, value)} is not valid; use one of {choices}.") from None
