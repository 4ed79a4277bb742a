"""``action_llm_response``: answer an open-ended turn with the LLM, or apologise — never silence."""

from __future__ import annotations

import functools
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import metrics
from actions.config import ActionServerConfig, get_config
from actions.llm_client import LLMError, complete_chat
from actions.prompt import build_messages
from actions.reply_guard import ReplyGuard
from ridgeline import knowledge

logger = logging.getLogger(__name__)

FALLBACK_RESPONSE = "utter_llm_unavailable"
TRUNCATED_RESPONSE = "utter_message_truncated"  # the user's message was cut to MAX_USER_CHARS


@functools.lru_cache(maxsize=4)
def reply_guard(config: ActionServerConfig) -> ReplyGuard:
    """One guard per configuration: its patterns are compiled once, not on every turn."""
    return ReplyGuard(
        knowledge.load(config.store_facts_path).instructions(),
        canary=config.prompt_canary,
        secrets=(config.llm_api_key or "",),
        blocked_patterns=config.reply_blocked_patterns,
        max_chars=config.max_reply_chars,
    )


class ActionLLMResponse(Action):
    def __init__(self, config: ActionServerConfig | None = None) -> None:
        self._config = config

    @property
    def config(self) -> ActionServerConfig:
        return self._config or get_config()

    def name(self) -> str:
        return "action_llm_response"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        config = self.config
        if len((tracker.latest_message or {}).get("text") or "") > config.max_user_chars:
            dispatcher.utter_message(response=TRUNCATED_RESPONSE, max_chars=f"{config.max_user_chars:,}")
        try:
            store = knowledge.load(config.store_facts_path)
            messages = build_messages(
                tracker.events,
                tracker.current_slot_values(),
                store,
                history_turns=config.history_turns,
                max_user_chars=config.max_user_chars,
                canary=config.prompt_canary,
            )
            reply = await complete_chat(messages, config)
            verdict = reply_guard(config).check(reply.text)
        except LLMError as error:
            logger.warning("LLM unavailable for %s (%s): %s", tracker.sender_id, error.reason, error)
            return apologise(dispatcher)
        except Exception:  # the user must get an answer whatever went wrong
            logger.exception("action_llm_response failed for %s", tracker.sender_id)
            return apologise(dispatcher)
        if verdict.text is None:
            logger.warning("withheld an LLM reply for %s: %s", tracker.sender_id, verdict.reason)
            return apologise(dispatcher)
        if reply.cut:
            logger.warning("sent %s a reply cut at its last complete sentence (%d chars)",
                           tracker.sender_id, len(verdict.text))
        metrics.count_llm_reply("cut" if reply.cut else "whole")
        dispatcher.utter_message(text=verdict.text)
        return []


def apologise(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    metrics.count_llm_reply("apology")
    dispatcher.utter_message(response=FALLBACK_RESPONSE)
    return []
