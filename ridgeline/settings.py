"""What every service's settings share: one ``ConfigError``, one way to read a choice and a
number, the fallback for a renamed variable, and what a service's process is given of the
supervisor's environment.

A setting is named as the user wrote it: a flag (``--dtype``) is followed by its value, an
environment variable or a file's key is assigned it (``LLM_DEVICE='tpu'``).

Each service's variables carry its prefix where a name alone would not say whose it is: ``LLM_*``
is the LLM service's, ``ACTIONS_*`` the action server's. Standard library only, for Python 3.10
(Rasa's runtime) and 3.11+.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping, TypeVar

E = TypeVar("E", bound=Enum)
N = TypeVar("N", int, float)

logger = logging.getLogger(__name__)


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


def _bounds(above: float | None, at_least: float | None, at_most: float | None) -> str:
    if at_least is not None and at_most is not None:
        return f" from {at_least:g} to {at_most:g}"
    if above is not None:
        return f" > {above:g}"
    if at_least is not None:
        return f" >= {at_least:g}"
    return f" <= {at_most:g}" if at_most is not None else ""


def parse_number(kind: type[N], raw: str, setting: str, *, above: float | None = None,
                 at_least: float | None = None, at_most: float | None = None, unit: str = "",
                 meaning: str = "") -> N:
    """``raw`` as an ``int`` or a finite ``float`` within the bounds, or a ``ConfigError`` that says so.

    The error reads ``RATE_LIMIT_MESSAGES='none' is not a whole number > 0.``: the setting as the
    user wrote it, what it must be (``unit``: "a number of seconds > 0"), and ``meaning`` in
    brackets when given.
    """
    text = raw.strip()
    try:
        value = kind(text) if kind is float or (text.isascii() and text.lstrip("+-").isdigit()) else None
    except ValueError:
        value = None
    if value is not None and (not math.isfinite(value) or (above is not None and not value > above)
                              or (at_least is not None and value < at_least)
                              or (at_most is not None and value > at_most)):
        value = None
    if value is None:
        what = "a whole number" if kind is int else "a number"
        what += f" of {unit}" if unit else ""
        why = f" ({meaning})" if meaning else ""
        raise ConfigError(f"{given(setting, raw)} is not {what}{_bounds(above, at_least, at_most)}{why}.")
    return value


def env_number(env: Mapping[str, str], name: str, kind: type[N], default: N, **bounds: Any) -> N:
    """The number in the environment variable ``name``, ``default`` when it is unset or blank.

    ``bounds`` are ``parse_number``'s: a value out of them is refused with a sentence naming ``name``.
    """
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return parse_number(kind, raw, name, **bounds)


# ---------------------------------------------------------------- renamed variables

_warned: set[str] = set()


def renamed(env: Mapping[str, str], renames: Mapping[str, str], service: str) -> dict[str, str]:
    """``env`` with the value of each old name in ``renames`` (old -> new) under its new name.

    For one release after a rename: the old name still works, and a warning (logged once per
    process) names the new one. When both are set, the new name wins, and a different value
    under the old name is reported as ignored. Unset and blank are the same.
    """
    result = dict(env)
    for old, new in renames.items():
        old_value = (env.get(old) or "").strip()
        if not old_value:
            continue
        new_value = (env.get(new) or "").strip()
        if not new_value:
            result[new] = env[old]
            message = (f"{old} is the old name of {new} ({service}); it works until the next release: "
                       f"rename it to {new}.")
        elif new_value != old_value:
            message = f"{old} is ignored: {new} is set too and wins ({service}); remove {old}, its old name."
        else:
            continue
        if old not in _warned:
            _warned.add(old)
            logger.warning(message)
    return result


# ---------------------------------------------------------------- what a service's process is given

# What every process needs of its parent's environment, whatever it runs: where programs, the
# home and temporary folders are, the locale and time zone, the proxy and CA settings, Python's
# and the numeric libraries' own switches (threads, GPUs, the Hugging Face cache), coverage.
PROCESS_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TMPDIR", "TEMP", "TMP", "TZ",
    "VIRTUAL_ENV", "LD_LIBRARY_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PROMETHEUS_MULTIPROC_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
})
PROCESS_PREFIXES = ("LC_", "PYTHON", "XDG_", "SSL_CERT_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_",
                    "OMP_", "MKL_", "KMP_", "OPENBLAS_", "CUDA_", "NVIDIA_", "COVERAGE_", "COV_CORE_")


@dataclass(frozen=True)
class Allowlist:
    """The environment variables a service reads: its settings module's ``names`` and ``prefixes``.

    A supervisor hands a service's process only these and the process basics
    (``PROCESS_NAMES``, ``PROCESS_PREFIXES``), never the whole of its own environment.
    """

    names: frozenset = frozenset()
    prefixes: tuple = ()

    def __init__(self, names: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "prefixes", tuple(prefixes))

    def allows(self, name: str) -> bool:
        return (name in self.names or name in PROCESS_NAMES
                or name.startswith(self.prefixes) or name.startswith(PROCESS_PREFIXES))

    def select(self, env: Mapping[str, str]) -> dict[str, str]:
        """The part of ``env`` this service's process is given."""
        return {name: value for name, value in env.items() if self.allows(name)}
