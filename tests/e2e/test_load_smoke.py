"""The load generator (python -m tools.load), small, against the session's whole stack."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import service_url
from tools.load.generator import Kind, LoadSettings, Outcome, markdown, run_load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_three_conversations_of_four_turns_are_all_answered(stack):
    pids = {name: running.process.pid for name, running in stack.running.items()}
    settings = LoadSettings(conversations=3, turns=4, memory_marks=(4, 12), run_id="smoke")
    report = asyncio.run(run_load(service_url(stack, "rasa"), settings, pids))

    assert report["turns"] == 12
    assert sum(report["outcomes"].values()) == 12  # every turn got exactly one class
    assert set(report["outcomes"]) == {o.value for o in Outcome}
    for kind in Kind:  # the three conversations between them say all three kinds of turn
        assert sum(report["outcomes_by_kind"][kind.value].values()) > 0, kind
    assert report["outcomes"]["missing"] == report["outcomes"]["5xx"] == report["outcomes"]["error"] == 0
    assert report["outcomes"]["rate_limited"] == 0  # 4 turns per sender stay under the channel's limit
    assert report["failures"] == [] or all("RSS" in f for f in report["failures"]), report["failures"]

    latency = report["latency_ms"]["all"]
    assert latency["n"] == 12 and 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["throughput_turns_per_s"] > 0

    samples = report["memory"]["samples"]
    assert [s["turns"] for s in samples] == [0, 4, 12]
    assert all(s["rss_mib"][name] > 10 for s in samples for name in ("rasa", "actions", "llm"))
    assert set(report["memory"]["ratio_last_first"]) == set(pids)
    assert "| all | 12 |" in markdown(report)
