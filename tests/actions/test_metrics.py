"""The action server's action_calls_total and action_duration_seconds (actions/metrics.py), measured around
rasa-sdk's executor (actions.server.MeasuredExecutor). Through the real stack: tests/e2e/test_metrics.py."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Action
from rasa_sdk.interfaces import ActionNotFoundException

from actions import metrics
from actions.server import MeasuredExecutor
from tests.actions.test_server import action_call


CLOCK = [1000.0]  # the executor's clock in these tests (see `fake_clock`): each Fine call takes 10 ms of it


class Fine(Action):
    def name(self) -> str:
        return "action_fine"

    async def run(self, dispatcher, tracker, domain):
        CLOCK[0] += 0.01
        return []


class Broken(Action):
    def name(self) -> str:
        return "action_broken"

    async def run(self, dispatcher, tracker, domain):
        raise RuntimeError("the database is gone")


def count(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    """Durations exact, whatever the machine's load: the executor reads this clock, which only Fine moves."""
    import actions.server

    monkeypatch.setattr(actions.server.time, "perf_counter", lambda: CLOCK[0])


@pytest.fixture
def executor() -> MeasuredExecutor:
    executor = MeasuredExecutor()
    executor.register_action(Fine)
    executor.register_action(Broken)
    return executor


def test_calls_are_counted_by_action_and_outcome_and_timed(executor):
    before = {key: count(*key[:1], **dict(key[1:])) for key in (
        ("action_calls_total", ("action", "action_fine"), ("outcome", "ok")),
        ("action_calls_total", ("action", "action_broken"), ("outcome", "error")),
        ("action_duration_seconds_count", ("action", "action_fine")),
        ("action_duration_seconds_sum", ("action", "action_fine")))}
    asyncio.run(executor.run(action_call("action_fine")))
    asyncio.run(executor.run(action_call("action_fine")))
    with pytest.raises(RuntimeError):
        asyncio.run(executor.run(action_call("action_broken")))
    assert count("action_calls_total", action="action_fine", outcome="ok") - before[
        ("action_calls_total", ("action", "action_fine"), ("outcome", "ok"))] == 2
    assert count("action_calls_total", action="action_broken", outcome="error") - before[
        ("action_calls_total", ("action", "action_broken"), ("outcome", "error"))] == 1
    assert count("action_calls_total", action="action_fine", outcome="error") == 0
    assert count("action_duration_seconds_count", action="action_fine") - before[
        ("action_duration_seconds_count", ("action", "action_fine"))] == 2
    assert count("action_duration_seconds_sum", action="action_fine") - before[
        ("action_duration_seconds_sum", ("action", "action_fine"))] == pytest.approx(0.02)


def test_an_unknown_action_is_one_label_not_many(executor):
    before = count("action_calls_total", action="unknown", outcome="error")
    for name in ("action_made_up_1", "action_made_up_2"):
        with pytest.raises(ActionNotFoundException):
            asyncio.run(executor.run(action_call(name)))
    assert count("action_calls_total", action="unknown", outcome="error") - before == 2
    assert count("action_calls_total", action="action_made_up_1", outcome="error") == 0


def test_unknown_outcomes_are_refused():
    with pytest.raises(ValueError, match="ok, error"):
        metrics.count_action_call("action_fine", "maybe", 0.1)
