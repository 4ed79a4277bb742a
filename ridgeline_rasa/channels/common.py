"""What the Slack and Telegram connectors share: env settings, the 'off' channel, redelivery memory."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Mapping, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from ridgeline_rasa import settings

logger = logging.getLogger(__name__)

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


def setting(credentials: Mapping[str, Any], key: str, env: Mapping[str, str], env_name: str,
            default: Optional[str] = None) -> Optional[str]:
    """A value from credentials.yml if given there, else from the environment, else the default."""
    value = credentials.get(key)
    if value is None or value == "":
        value = env.get(env_name)
    if value is None or value == "":
        return default
    return str(value)


def flag(value: Optional[str], name: str) -> bool:
    word = (value or "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{name}={value!r} is not a yes/no value; use true or false.")


def environment() -> Mapping[str, str]:
    """The SLACK_* and TELEGRAM_* variables of Rasa's environment (read once: ridgeline_rasa.settings)."""
    return settings.current().channels


class DisabledChannel(InputChannel):
    """A channel whose secrets are not set: its webhook answers 404 and says which variables to set."""

    def __init__(self, channel_name: str, missing: list[str]) -> None:
        self._channel_name = channel_name
        self.missing = missing
        logger.info("The %s channel is off; set %s in Rasa's environment to turn it on.",
                    channel_name, " and ".join(missing))

    def name(self) -> str:  # an instance method here: the name depends on which channel is off
        return self._channel_name

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint(f"{self._channel_name}_off", __name__)
        message = (f"The {self._channel_name} channel is off: set {' and '.join(self.missing)} "
                   "in the Rasa server's environment (docs/channels.md).")

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "off", "error": message}, status=404)

        @blueprint.route("/webhook", methods=["GET", "POST"])
        async def webhook(_: Request) -> HTTPResponse:
            return response.json({"error": message}, status=404)

        return blueprint


class RecentKeys:
    """Delivery keys seen in the last ``ttl_s`` seconds (at most ``capacity``).

    Slack and Telegram deliver a webhook again when they think the first delivery failed;
    remembering what was already handled answers each user message once. The memory is per
    process: a redelivery that reaches another Rasa replica is not caught (docs/channels.md).
    """

    def __init__(self, capacity: int = 10_000, ttl_s: float = 3600.0) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._seen: "OrderedDict[str, float]" = OrderedDict()

    def add(self, key: str) -> bool:
        """True if ``key`` is new (and remember it), False if it was seen recently."""
        now = time.monotonic()
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self.ttl_s and len(self._seen) < self.capacity:
                break
            self._seen.pop(oldest)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
