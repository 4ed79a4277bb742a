"""The action server's configuration, read from the environment in one place.

Its variables about the LLM it calls are ``ACTIONS_LLM_*`` (``LLM_*`` is the LLM service's); the
others name what only the action server has (the orders database, its token, the prompt and
reply limits, ``HANDOFF_*``: who hears of a handoff's ticket) and keep their names. ``VARIABLES`` lists them all; ``RENAMED`` the old names, which
still work for one release with a warning; ``READS`` is what a supervisor hands this process of
its environment (stack/services.py). The defaults are the dataclass's: the chart's values.yaml,
docker-compose.yml and .env.example are kept equal to them by tests/deploy/test_defaults.py.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ridgeline.history import HISTORY_TURNS
from ridgeline.logs import VARIABLES as LOG_VARIABLES
from ridgeline.logs import LogSettings
from ridgeline.paths import CATALOG_FILE as DEFAULT_CATALOG_FILE
from ridgeline.paths import REPO_ROOT
from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS
from ridgeline.settings import Allowlist, ConfigError, env_number, renamed

DEFAULT_ORDERS_DB_URL = f"sqlite:///{REPO_ROOT / 'var' / 'orders.db'}"
# The LLM service's default port (llm/config.py; a test keeps them equal): OpenAI clients expect /v1.
DEFAULT_LLM_PORT = 8000

# Rasa holds a per-conversation lock for 60 s; an action must finish well inside it.
RASA_LOCK_SECONDS = 60.0

# Each setting's environment variable (field -> name).
VARIABLE_OF = {
    "llm_base_url": "ACTIONS_LLM_URL",
    "llm_model": "ACTIONS_LLM_MODEL",
    "llm_api_key": "ACTIONS_LLM_API_KEY",
    "llm_timeout_s": "ACTIONS_LLM_TIMEOUT_S",
    "llm_max_tokens": "ACTIONS_LLM_MAX_TOKENS",
    "llm_temperature": "ACTIONS_LLM_TEMPERATURE",
    "history_turns": "ACTIONS_LLM_HISTORY_TURNS",
    "llm_sources": "ACTIONS_LLM_SOURCES",
    "max_user_chars": "MAX_USER_CHARS",
    "max_reply_chars": "MAX_REPLY_CHARS",
    "prompt_canary": "PROMPT_CANARY",
    "reply_blocked_patterns": "REPLY_BLOCKED_PATTERNS",
    "orders_db_url": "ORDERS_DB_URL",
    "orders_seed_sample": "ORDERS_SEED_SAMPLE",
    "store_facts_path": "STORE_FACTS_PATH",
    "catalog_path": "CATALOG_PATH",
    "catalog_refresh_s": "CATALOG_REFRESH_S",
    "action_server_token": "ACTION_SERVER_TOKEN",
    "max_request_bytes": "ACTION_SERVER_MAX_REQUEST_BYTES",
    # Who hears of a handoff's ticket (actions/notify.py): Slack's chat.postMessage and/or an email.
    "handoff_slack_bot_token": "HANDOFF_SLACK_BOT_TOKEN",
    "handoff_slack_channel": "HANDOFF_SLACK_CHANNEL",
    "handoff_slack_api_url": "HANDOFF_SLACK_API_URL",
    "handoff_smtp_host": "HANDOFF_SMTP_HOST",
    "handoff_smtp_port": "HANDOFF_SMTP_PORT",
    "handoff_smtp_from": "HANDOFF_SMTP_FROM",
    "handoff_smtp_to": "HANDOFF_SMTP_TO",
    "handoff_smtp_user": "HANDOFF_SMTP_USER",
    "handoff_smtp_password": "HANDOFF_SMTP_PASSWORD",
    "handoff_smtp_starttls": "HANDOFF_SMTP_STARTTLS",
    "handoff_notify_timeout_s": "HANDOFF_NOTIFY_TIMEOUT_S",
}
# LOG_FORMAT and LOG_SENDER_SALT (ridgeline.logs; log_settings()): every service reads them, with one meaning.
VARIABLES = (*VARIABLE_OF.values(), *LOG_VARIABLES)
# Old name -> new name, renamed in issue 12 (the LLM service owns LLM_*); the old names go in the next release.
RENAMED = {
    "LLM_BASE_URL": "ACTIONS_LLM_URL",
    "LLM_MODEL_NAME": "ACTIONS_LLM_MODEL",
    "LLM_API_KEY": "ACTIONS_LLM_API_KEY",
    "LLM_TIMEOUT_S": "ACTIONS_LLM_TIMEOUT_S",
    "LLM_MAX_TOKENS": "ACTIONS_LLM_MAX_TOKENS",
    "LLM_TEMPERATURE": "ACTIONS_LLM_TEMPERATURE",
    "LLM_HISTORY_TURNS": "ACTIONS_LLM_HISTORY_TURNS",
}
# What the action server's process reads of its environment: these, the old names, and rasa-sdk's
# own (SANIC_HOST, LOG_LEVEL_LIBRARIES, ACTION_SERVER_SANIC_WORKERS and the other ACTION_SERVER_*, RASA_SDK_*).
READS = Allowlist(names=(*VARIABLES, *RENAMED, "SANIC_HOST", "LOG_LEVEL_LIBRARIES"),
                  prefixes=("ACTIONS_", "ACTION_SERVER_", "RASA_SDK_"))


def llm_url(host: str, port: int = DEFAULT_LLM_PORT) -> str:
    """The OpenAI-compatible base URL of an LLM service at ``host``:``port`` (with ``/v1``)."""
    return f"http://{host}:{port}/v1"


@dataclass(frozen=True)
class ActionServerConfig:
    llm_base_url: str = llm_url("localhost")
    llm_model: str = "default"
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 20.0
    # The persona answers "in at most four sentences": about 100 tokens; a reply that reaches the
    # limit mid-sentence is cut at its last complete one (llm_client).
    llm_max_tokens: int = 100
    llm_temperature: float = 0.7
    history_turns: int = HISTORY_TURNS
    # Catalog products given to the LLM with each visitor message (numbered sources); 0: none.
    llm_sources: int = 3
    max_user_chars: int = 2000
    max_reply_chars: int = 1200
    prompt_canary: str | None = field(default=None, repr=False)
    reply_blocked_patterns: tuple[str, ...] = ()
    orders_db_url: str = DEFAULT_ORDERS_DB_URL
    orders_seed_sample: bool = True
    store_facts_path: Path = DEFAULT_STORE_FACTS
    # The catalog CSV, loaded into the store database; checked for changes this often (prices, stock).
    catalog_path: Path = DEFAULT_CATALOG_FILE
    catalog_refresh_s: float = 60.0
    # Rasa sends it as "Authorization: Bearer <token>"; unset, the action server answers anyone.
    action_server_token: str | None = field(default=None, repr=False)
    max_request_bytes: int = 16 * 1024 * 1024
    # A handoff's ticket is announced to the team through whichever of these is configured (both, one
    # or none: the ticket is in the store database either way). Slack: a bot token with chat:write
    # and the channel (an id like C0123456789, or #name); the Web API's URL is for tests and proxies.
    handoff_slack_bot_token: str | None = field(default=None, repr=False)
    handoff_slack_channel: str | None = None
    handoff_slack_api_url: str = "https://slack.com/api"
    # Email: an SMTP relay; _TO is one or more addresses (comma-separated). STARTTLS unless turned off
    # (a relay on localhost); login only when _USER is set.
    handoff_smtp_host: str | None = None
    handoff_smtp_port: int = 587
    handoff_smtp_from: str | None = None
    handoff_smtp_to: tuple[str, ...] = ()
    handoff_smtp_user: str | None = None
    handoff_smtp_password: str | None = field(default=None, repr=False)
    handoff_smtp_starttls: bool = True
    # Each notification's budget; they are sent in the background after the ticket is committed.
    handoff_notify_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        if not self.llm_base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{VARIABLE_OF['llm_base_url']}={self.llm_base_url!r} is not an http(s) URL; "
                f"set it to the OpenAI-compatible base URL, e.g. {llm_url('localhost')}."
            )
        if not 0 < self.llm_timeout_s < RASA_LOCK_SECONDS:
            raise ConfigError(
                f"{VARIABLE_OF['llm_timeout_s']}={self.llm_timeout_s:g} must be above 0 and below "
                f"{RASA_LOCK_SECONDS:.0f} s (Rasa's conversation lock); "
                f"{ActionServerConfig.llm_timeout_s:g} is the default."
            )
        for pattern in self.reply_blocked_patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ConfigError(
                    f"{VARIABLE_OF['reply_blocked_patterns']} has an invalid regular expression {pattern!r} ({error}); "
                    "put one Python regular expression per line."
                ) from None
        for name in ("llm_max_tokens", "history_turns", "max_user_chars", "max_reply_chars", "max_request_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{VARIABLE_OF[name]} must be a positive whole number.")
        if not 0 <= self.llm_sources <= 10:
            raise ConfigError(f"{VARIABLE_OF['llm_sources']}={self.llm_sources} must be 0 (no sources) to 10.")
        if self.catalog_refresh_s < 0:
            raise ConfigError(f"{VARIABLE_OF['catalog_refresh_s']} must be 0 (check on every search) or more seconds.")
        if not 0 <= self.llm_temperature <= 2:
            raise ConfigError(f"{VARIABLE_OF['llm_temperature']} must be between 0 and 2.")
        self._check_handoff_notifications()

    def _check_handoff_notifications(self) -> None:
        slack = {"handoff_slack_bot_token": self.handoff_slack_bot_token,
                 "handoff_slack_channel": self.handoff_slack_channel}
        if any(slack.values()) and not all(slack.values()):
            missing = next(name for name, value in slack.items() if not value)
            raise ConfigError(f"Slack notifications of handoffs need both {VARIABLE_OF['handoff_slack_bot_token']} "
                              f"and {VARIABLE_OF['handoff_slack_channel']}; set {VARIABLE_OF[missing]} too, "
                              "or neither.")
        if not self.handoff_slack_api_url.startswith(("http://", "https://")):
            raise ConfigError(f"{VARIABLE_OF['handoff_slack_api_url']}={self.handoff_slack_api_url!r} is not an "
                              f"http(s) URL; the default is {ActionServerConfig.handoff_slack_api_url}.")
        if self.handoff_smtp_host and not (self.handoff_smtp_from and self.handoff_smtp_to):
            raise ConfigError(f"{VARIABLE_OF['handoff_smtp_host']} is set: set {VARIABLE_OF['handoff_smtp_from']} "
                              f"(the sender) and {VARIABLE_OF['handoff_smtp_to']} (the team's addresses) too.")
        if bool(self.handoff_smtp_user) != bool(self.handoff_smtp_password):
            raise ConfigError(f"{VARIABLE_OF['handoff_smtp_user']} and {VARIABLE_OF['handoff_smtp_password']} "
                              "go together: set both to log in to the SMTP server, or neither.")
        if not 1 <= self.handoff_smtp_port <= 65535:
            raise ConfigError(f"{VARIABLE_OF['handoff_smtp_port']}={self.handoff_smtp_port} is not a port (1-65535).")
        if not 0 < self.handoff_notify_timeout_s <= 30:
            raise ConfigError(f"{VARIABLE_OF['handoff_notify_timeout_s']}={self.handoff_notify_timeout_s:g} must be "
                              f"above 0 and at most 30 s; {ActionServerConfig.handoff_notify_timeout_s:g} is the "
                              "default.")

    @property
    def handoff_slack_configured(self) -> bool:
        return bool(self.handoff_slack_bot_token and self.handoff_slack_channel)

    @property
    def handoff_smtp_configured(self) -> bool:
        return bool(self.handoff_smtp_host)

    @property
    def chat_completions_url(self) -> str:
        return self.llm_base_url.rstrip("/") + "/chat/completions"


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false.")


def from_env(env: Mapping[str, str] | None = None) -> ActionServerConfig:
    """Build the configuration from environment variables (defaults for a laptop).

    An old name in ``RENAMED`` still works, with a warning naming its new one.
    """
    env = renamed(os.environ if env is None else env, RENAMED, "the action server")
    defaults = ActionServerConfig()

    def text(name: str) -> str | None:
        return env.get(VARIABLE_OF[name]) or None

    def number(name: str, kind: type):
        return env_number(env, VARIABLE_OF[name], kind, getattr(defaults, name))

    return ActionServerConfig(
        llm_base_url=text("llm_base_url") or defaults.llm_base_url,
        llm_model=text("llm_model") or defaults.llm_model,
        llm_api_key=text("llm_api_key"),
        llm_timeout_s=number("llm_timeout_s", float),
        llm_max_tokens=number("llm_max_tokens", int),
        llm_temperature=number("llm_temperature", float),
        history_turns=number("history_turns", int),
        llm_sources=number("llm_sources", int),
        max_user_chars=number("max_user_chars", int),
        max_reply_chars=number("max_reply_chars", int),
        prompt_canary=text("prompt_canary"),
        reply_blocked_patterns=tuple(
            line.strip() for line in (text("reply_blocked_patterns") or "").splitlines() if line.strip()
        ),
        orders_db_url=text("orders_db_url") or defaults.orders_db_url,
        orders_seed_sample=_flag(env, VARIABLE_OF["orders_seed_sample"], defaults.orders_seed_sample),
        store_facts_path=Path(text("store_facts_path") or defaults.store_facts_path),
        catalog_path=Path(text("catalog_path") or defaults.catalog_path),
        catalog_refresh_s=number("catalog_refresh_s", float),
        action_server_token=text("action_server_token"),
        max_request_bytes=number("max_request_bytes", int),
        handoff_slack_bot_token=text("handoff_slack_bot_token"),
        handoff_slack_channel=text("handoff_slack_channel"),
        handoff_slack_api_url=text("handoff_slack_api_url") or defaults.handoff_slack_api_url,
        handoff_smtp_host=text("handoff_smtp_host"),
        handoff_smtp_port=number("handoff_smtp_port", int),
        handoff_smtp_from=text("handoff_smtp_from"),
        handoff_smtp_to=tuple(part.strip() for part in (text("handoff_smtp_to") or "").split(",") if part.strip()),
        handoff_smtp_user=text("handoff_smtp_user"),
        handoff_smtp_password=text("handoff_smtp_password"),
        handoff_smtp_starttls=_flag(env, VARIABLE_OF["handoff_smtp_starttls"], defaults.handoff_smtp_starttls),
        handoff_notify_timeout_s=number("handoff_notify_timeout_s", float),
    )


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    """LOG_FORMAT (text or json) and LOG_SENDER_SALT, for the action server's log lines (ridgeline.logs)."""
    return LogSettings.from_env(os.environ if env is None else env)


@functools.lru_cache(maxsize=1)
def get_config() -> ActionServerConfig:
    """The process-wide configuration, read once."""
    return from_env()


class Configured:
    """What an action needs of its configuration: the one given (tests), else the process's.

    A mixin, not an ``Action``: rasa-sdk registers every ``Action`` subclass of the package, and this
    is no action of its own. ``class ActionX(Configured, Action)``.
    """

    def __init__(self, config: ActionServerConfig | None = None) -> None:
        self._config = config

    @property
    def config(self) -> ActionServerConfig:
        return self._config or get_config()
