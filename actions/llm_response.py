"""``action_llm_response``: answer an open-ended turn with the LLM, or apologise — never silence."""

from __future__ import annotations

import functools
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import metrics
from actions.catalog_search import CatalogIndex
from actions.config import ActionServerConfig, Configured
from actions.llm_client import LLMError, complete_chat
from actions.product_search import current_index
from actions.prompt import build_messages
from actions.reply_guard import ReplyGuard
from ridgeline import feedback, knowledge
from ridgeline.catalog import Product
from ridgeline.grounding import check_grounding, grounded_fallback

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


class ActionLLMResponse(Configured, Action):


    def name(self) -> str:
        return "action_llm_response"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        config = self.config
        if len((tracker.latest_message or {}).get("text") or "") > config.max_user_chars:
            dispatcher.utter_message(response=TRUNCATED_RESPONSE, max_chars=f"{config.max_user_chars:,}")
        index = await catalog_index(config, tracker.sender_id)
        sources = Sources(index, config.llm_sources) if index else None
        try:
            store = knowledge.load(config.store_facts_path)
            messages = build_messages(
                tracker.events,
                tracker.current_slot_values(),
                store,
                history_turns=config.history_turns,
                max_user_chars=config.max_user_chars,
                canary=config.prompt_canary,
                sources_for=sources,
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
        if sources is not None:
            grounding = check_grounding(verdict.text, sources.given, index.products,
                                        allowed_text=prompt_text(messages), store_name=store.store_name)
            if not grounding.ok:
                logger.warning("withheld an LLM reply for %s that invents store facts (%s)",
                               tracker.sender_id, grounding.reason)
                fallback = grounded_fallback(sources.latest, store_name=store.store_name)
                if not fallback:
                    return apologise(dispatcher)
                metrics.count_llm_reply("rewritten")
                dispatcher.utter_message(text=fallback)
                return []
        if reply.cut:
            logger.warning("sent %s a reply cut at its last complete sentence (%d chars)",
                           tracker.sender_id, len(verdict.text))
        metrics.count_llm_reply("cut" if reply.cut else "whole")
        send_model_reply(dispatcher, verdict.text, sources.latest if sources is not None else [])
        return []


def send_model_reply(dispatcher: CollectingDispatcher, text: str, sources: list[Product]) -> None:
    """The model's reply, with the two verdict buttons (``ridgeline.feedback``).

    Its ``reply_id`` and the SKUs of the sources its user message was given go into the bot
    event's metadata: a verdict names the reply it judges, and the review tool rebuilds the
    prompt the model saw. Scripted replies (the apology, a reply rebuilt from the sources) get
    no buttons: a verdict on them says nothing about the model.
    """
    reply_id = feedback.new_reply_id()
    dispatcher.utter_message(text=text, buttons=feedback.buttons(reply_id),
                             **{feedback.REPLY_ID_METADATA: reply_id,
                                feedback.SOURCES_METADATA: [product.sku for product in sources]})


async def catalog_index(config: ActionServerConfig, sender: str) -> CatalogIndex | None:
    """The catalog to ground the reply in; ``None`` (no sources) when ``ACTIONS_LLM_SOURCES`` is 0
    or the catalog is unavailable: the LLM still answers, from the store facts alone."""
    if not config.llm_sources:
        return None
    try:
        index = await current_index(config)
    except Exception:
        logger.exception("no catalog sources for %s: the catalog is unavailable", sender)
        return None
    return index if index.products else None


def prompt_text(messages: list[dict[str, str]]) -> str:
    """What a reply may repeat prices from: the store facts and what the visitor said ("under £150")."""
    return "\n".join(m["content"] for m in messages if m["role"] in ("system", "user"))


class Sources:
    """``build_messages``' ``sources_for``: the products retrieved for each user message, kept so
    that the reply can be checked against every source its prompt held."""

    def __init__(self, index: CatalogIndex, k: int) -> None:
        self.index, self.k = index, k
        self.given: list[Product] = []
        self.latest: list[Product] = []

    def __call__(self, text: str, previous: str | None) -> list[Product]:
        self.latest = self.index.sources(text, previous, k=self.k)
        self.given += [p for p in self.latest if p not in self.given]
        return self.latest


def apologise(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    metrics.count_llm_reply("apology")
    dispatcher.utter_message(response=FALLBACK_RESPONSE)
    return []
