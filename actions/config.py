"""The action server's configuration, read from the environment in one place."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ridgeline.paths import REPO_ROOT
from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS
from ridgeline.settings import ConfigError

DEFAULT_ORDERS_DB_URL = f"sqlite:///{REPO_ROOT / 'var' / 'orders.db'}"

# Rasa holds a per-conversation lock for 60 s; an action must finish well inside it.
RASA_LOCK_SECONDS = 60.0


@dataclass(frozen=True)
class ActionServerConfig:
    llm_base_url: str = "http://localhost:8000/v1"
    llm_model: str = "default"
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 20.0
    # The persona answers "in at most four sentences": about 100 tokens; a reply that reaches the
    # limit mid-sentence is cut at its last complete one (llm_client).
    llm_max_tokens: int = 100
    llm_temperature: float = 0.7
    history_turns: int = 8
    max_user_chars: int = 2000
    max_reply_chars: int = 1200
    prompt_canary: str | None = field(default=None, repr=False)
    reply_blocked_patterns: tuple[str, ...] = ()
    orders_db_url: str = DEFAULT_ORDERS_DB_URL
    orders_seed_sample: bool = True
    store_facts_path: Path = DEFAULT_STORE_FACTS
    # Rasa sends it as "Authorization: Bearer <token>"; unset, the action server answers anyone.
    action_server_token: str | None = field(default=None, repr=False)
    max_request_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.llm_base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"LLM_BASE_URL={self.llm_base_url!r} is not an http(s) URL; "
                "set it to the OpenAI-compatible base URL, e.g. http://localhost:8000/v1."
            )
        if not 0 < self.llm_timeout_s < RASA_LOCK_SECONDS:
            raise ConfigError(
                f"LLM_TIMEOUT_S={self.llm_timeout_s} must be above 0 and below "
                f"{RASA_LOCK_SECONDS:.0f} s (Rasa's conversation lock); 20 is the default."
            )
        for pattern in self.reply_blocked_patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ConfigError(
                    f"REPLY_BLOCKED_PATTERNS has an invalid regular expression {pattern!r} ({error}); "
                    "put one Python regular expression per line."
                ) from None
        for name, variable in (("llm_max_tokens", "LLM_MAX_TOKENS"), ("history_turns", "LLM_HISTORY_TURNS"),
                               ("max_user_chars", "MAX_USER_CHARS"), ("max_reply_chars", "MAX_REPLY_CHARS"),
                               ("max_request_bytes", "ACTION_SERVER_MAX_REQUEST_BYTES")):
            if getattr(self, name) < 1:
                raise ConfigError(f"{variable} must be a positive whole number.")
        if not 0 <= self.llm_temperature <= 2:
            raise ConfigError("LLM_TEMPERATURE must be between 0 and 2.")

    @property
    def chat_completions_url(self) -> str:
        return self.llm_base_url.rstrip("/") + "/chat/completions"


def _number(env: Mapping[str, str], name: str, kind: type, default):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}.") from None


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
    """Build the configuration from environment variables (defaults for a laptop)."""
    env = os.environ if env is None else env
    defaults = ActionServerConfig()
    return ActionServerConfig(
        llm_base_url=env.get("LLM_BASE_URL") or defaults.llm_base_url,
        llm_model=env.get("LLM_MODEL_NAME") or defaults.llm_model,
        llm_api_key=env.get("LLM_API_KEY") or None,
        llm_timeout_s=_number(env, "LLM_TIMEOUT_S", float, defaults.llm_timeout_s),
        llm_max_tokens=_number(env, "LLM_MAX_TOKENS", int, defaults.llm_max_tokens),
        llm_temperature=_number(env, "LLM_TEMPERATURE", float, defaults.llm_temperature),
        history_turns=_number(env, "LLM_HISTORY_TURNS", int, defaults.history_turns),
        max_user_chars=_number(env, "MAX_USER_CHARS", int, defaults.max_user_chars),
        max_reply_chars=_number(env, "MAX_REPLY_CHARS", int, defaults.max_reply_chars),
        prompt_canary=env.get("PROMPT_CANARY") or None,
        reply_blocked_patterns=tuple(
            line.strip() for line in (env.get("REPLY_BLOCKED_PATTERNS") or "").splitlines() if line.strip()
        ),
        orders_db_url=env.get("ORDERS_DB_URL") or defaults.orders_db_url,
        orders_seed_sample=_flag(env, "ORDERS_SEED_SAMPLE", defaults.orders_seed_sample),
        store_facts_path=Path(env.get("STORE_FACTS_PATH") or defaults.store_facts_path),
        action_server_token=env.get("ACTION_SERVER_TOKEN") or None,
        max_request_bytes=_number(env, "ACTION_SERVER_MAX_REQUEST_BYTES", int, defaults.max_request_bytes),
    )


@functools.lru_cache(maxsize=1)
def get_config() -> ActionServerConfig:
    """The process-wide configuration, read once."""
    return from_env()
