"""Every environment variable the Rasa extension reads, read once, here.

Rasa itself reads its own (``SANIC_REQUEST_MAX_SIZE``, ``RASA_TELEMETRY_ENABLED``, the ``${VARS}``
of endpoints.yml; see ``ridgeline_rasa.launch``); the extension reads only the ones in
``VARIABLES``, through ``current()``: the process's settings, read from ``os.environ`` the
first time they are asked for and kept. A value that cannot be used raises ``ValueError`` (a
``ridgeline.settings.ConfigError``) with a sentence that names the variable and what to set instead.
None of these names is another service's (tests/architecture/test_settings.py keeps it so).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ridgeline.logs import VARIABLES as LOG_VARIABLES
from ridgeline.logs import LogSettings
from ridgeline.settings import env_number

# The channel gate's limits (channels/gate.py).
GATE_VARIABLES = ("MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_S")
# Who may use Rasa's HTTP API, as Rasa itself was told (`--auth-token`, `--jwt-secret`): the API
# guard (api_guard.py) checks bodies only for callers Rasa will let in.
API_VARIABLES = ("RASA_AUTH_TOKEN", "RASA_JWT_SECRET", "RASA_JWT_METHOD")
# The Slack and Telegram channels' secrets and options; credentials.yml keys override them.
SLACK_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL", "SLACK_USE_THREADS",
                   "SLACK_CONVERSATION_GRANULARITY", "SLACK_API_URL")
TELEGRAM_VARIABLES = ("TELEGRAM_ACCESS_TOKEN", "TELEGRAM_SECRET_TOKEN", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_API_URL")
# /metrics (metrics.py) also reads PROMETHEUS_MULTIPROC_DIR, prometheus-client's own name (the library
# reads it too): a process basic (ridgeline.settings), not a variable of the extension's own.
# LOG_FORMAT and LOG_SENDER_SALT: the JSON log lines and their sender hash (ridgeline.logs), read
# by every service with one meaning.
VARIABLES = GATE_VARIABLES + API_VARIABLES + SLACK_VARIABLES + TELEGRAM_VARIABLES + LOG_VARIABLES


@dataclass(frozen=True)
class GateSettings:
    """What every channel allows a sender: message length, messages per window."""

    max_message_chars: int = 4000
    rate_limit_messages: int = 15
    rate_limit_window_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "GateSettings":
        return cls(
            max_message_chars=env_number(env, "MAX_MESSAGE_CHARS", int, cls.max_message_chars, above=0),
            rate_limit_messages=env_number(env, "RATE_LIMIT_MESSAGES", int, cls.rate_limit_messages, above=0),
            rate_limit_window_s=env_number(env, "RATE_LIMIT_WINDOW_S", float, cls.rate_limit_window_s, above=0,
                                           unit="seconds"),
        )


@dataclass(frozen=True)
class ApiAccess:
    """Rasa's API token and JWT secret (and its HMAC method), as Rasa's environment holds them."""

    auth_token: str = field(default="", repr=False)
    jwt_secret: Optional[str] = field(default=None, repr=False)
    jwt_method: str = "HS256"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ApiAccess":
        return cls(auth_token=env.get("RASA_AUTH_TOKEN") or "", jwt_secret=env.get("RASA_JWT_SECRET") or None,
                   jwt_method=env.get("RASA_JWT_METHOD") or "HS256")


@dataclass(frozen=True)
class MetricsSettings:
    """Where the Sanic workers' counts meet (PROMETHEUS_MULTIPROC_DIR); None: this process counts alone."""

    multiproc_dir: Optional[str] = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MetricsSettings":
        return cls(multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None)


@dataclass(frozen=True)
class Settings:
    gate: GateSettings = GateSettings()
    api: ApiAccess = ApiAccess()
    # The SLACK_* and TELEGRAM_* variables that are set: each channel combines them with its
    # credentials.yml keys (channels/slack.py, channels/telegram.py).
    channels: Mapping[str, str] = field(default_factory=dict, repr=False)
    metrics: MetricsSettings = MetricsSettings()
    logs: LogSettings = LogSettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        return cls(gate=GateSettings.from_env(env), api=ApiAccess.from_env(env),
                   metrics=MetricsSettings.from_env(env), logs=LogSettings.from_env(env),
                   channels={name: env[name] for name in SLACK_VARIABLES + TELEGRAM_VARIABLES if name in env})


@functools.lru_cache(maxsize=1)
def current() -> Settings:
    """This process's settings, read from the environment once."""
    return Settings.from_env(os.environ)
