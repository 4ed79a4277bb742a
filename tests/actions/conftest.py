from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from ridgeline import knowledge
from actions.config import ActionServerConfig
from tests.support.fake_openai import FakeOpenAIServer


def make_tracker(events: list[dict[str, Any]], slots: dict[str, Any] | None = None) -> Tracker:
    latest = next((e for e in reversed(events) if e.get("event") == "user"), None)
    return Tracker(
        sender_id="tester",
        slots=slots or {},
        latest_message={"text": latest["text"]} if latest else {},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


def user(text: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": "open_question"}}}


def bot(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text}


@pytest.fixture
def store_knowledge() -> knowledge.StoreKnowledge:
    return knowledge.load()


@pytest.fixture
def fake_llm():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_config(fake_llm, tmp_path) -> ActionServerConfig:
    return ActionServerConfig(
        llm_base_url=fake_llm.base_url,
        llm_timeout_s=1.0,
        orders_db_url=f"sqlite:///{tmp_path / 'orders.db'}",
    )
