"""The load generator's pure parts (tools.load): conversation plans, classification, RSS, the report."""

from __future__ import annotations

import os

import pytest

from tools.load.generator import (
    NO_REPLY_RESPONSES,
    FAILING, Kind, LoadSettings, Outcome, TurnResult, apology_texts, build_report, classify, markdown,
    plan_conversation, process_tree, read_stat, services_rss_mib,
)

APOLOGIES = frozenset({"Sorry, I can't answer that right now."})
NO_REPLY = frozenset({"Sorry, part of our system isn't responding."})


@pytest.mark.parametrize("status, body, outcome", [
    (200, [{"recipient_id": "a", "text": "Hi! How can I help?"}], Outcome.OK),
    (200, [{"text": "  "}, {"text": "Your order RG-10421 shipped."}], Outcome.OK),
    (200, [], Outcome.MISSING),
    (200, [{"image": "https://example.com/x.png"}], Outcome.MISSING),
    (200, [{"text": ""}], Outcome.MISSING),
    (200, [{"text": "Sorry, I can't answer that\n right now."}], Outcome.APOLOGY),  # whitespace-normalised
    (200, [{"text": "Sorry, part of our system isn't responding."}], Outcome.NO_REPLY),  # the channel filled in
    (200, [{"text": "Sorry, part of our system isn't responding."}, {"text": "What's your order id?"}],
     Outcome.OK),
    (429, {"error": "Too many messages"}, Outcome.RATE_LIMITED),
    (400, {"error": "bad"}, Outcome.CLIENT_ERROR),
    (404, None, Outcome.CLIENT_ERROR),
    (500, None, Outcome.SERVER_ERROR),
    (503, {"error": "x"}, Outcome.SERVER_ERROR),
    (None, None, Outcome.ERROR),
    (200, {"not": "a list"}, Outcome.ERROR),
    (302, None, Outcome.ERROR),
])
def test_every_reply_gets_one_class(status, body, outcome):
    assert classify(status, body, APOLOGIES, NO_REPLY) is outcome


def test_apology_texts_come_from_the_domain():
    texts = apology_texts()
    assert texts and all("\n" not in t and "  " not in t for t in texts)
    assert all(t.startswith("Sorry, I can't answer that right now") for t in texts)  # utter_llm_unavailable
    no_reply = apology_texts(names=NO_REPLY_RESPONSES)
    assert no_reply and all("isn't responding right now" in t for t in no_reply)     # utter_no_reply


@pytest.mark.parametrize("turns", [1, 2, 3, 4, 6, 10, 15])
def test_conversations_have_the_asked_length_and_are_reproducible(turns):
    for n in range(8):
        plan = plan_conversation(n, turns)
        assert len(plan) == turns
        assert plan == plan_conversation(n, turns)
        assert plan[0].kind is Kind.SCRIPTED  # a greeting first


def test_ten_turn_conversations_mix_every_kind_and_finish_the_form():
    plans = [plan_conversation(n, 10) for n in range(50)]
    kinds = [t.kind for plan in plans for t in plan]
    assert {Kind.SCRIPTED, Kind.FORM, Kind.OPEN} <= set(kinds)
    assert kinds.count(Kind.OPEN) >= len(kinds) // 5
    for plan in plans:
        assert plan[-1].text in {"bye", "goodbye", "see you later"}
        segments = "".join("F" if t.kind is Kind.FORM else "." for t in plan).split(".")
        ends = [i for i, t in enumerate(plan)
                if t.kind is Kind.FORM and (i + 1 == len(plan) or plan[i + 1].kind is not Kind.FORM)]
        assert all("@" in plan[i].text for i in ends), plan  # every form gets its email
        assert all(len(seg) in (0, 2, 3) for seg in segments), plan


def test_three_short_conversations_cover_form_open_and_scripted():
    kinds = {t.kind for n in range(3) for t in plan_conversation(n, 4)}
    assert kinds == {Kind.SCRIPTED, Kind.FORM, Kind.OPEN}


def test_memory_runs_send_whole_conversations_past_the_last_mark():
    assert LoadSettings(conversations=50, turns=10).total_turns == 500
    assert LoadSettings(conversations=50, turns=10, memory_marks=(1000, 10000)).total_turns == 10000
    assert LoadSettings(conversations=3, turns=4, memory_marks=(5, 10)).total_turns == 12
    assert LoadSettings(conversations=3, turns=4, memory_marks=(5, 9)).total_turns == 12


def fake_proc(tmp_path, processes: dict[int, tuple[int, int, str]]):
    """A /proc with pid -> (ppid, session, rss kB)."""
    for pid, (ppid, session, rss) in processes.items():
        d = tmp_path / str(pid)
        d.mkdir()
        d.joinpath("stat").write_text(f"{pid} (py) thon ) x) S {ppid} {session} {session} 0 -1 4194560 0 0\n")
        d.joinpath("status").write_text(f"Name:\tpython\nVmRSS:\t  {rss} kB\nThreads:\t3\n")
    (tmp_path / "self").mkdir()
    return tmp_path


def test_rss_sums_a_service_and_its_descendants(tmp_path):
    proc = fake_proc(tmp_path, {
        1: (0, 1, 10),
        100: (1, 100, 1024),    # the service, leading its own session
        101: (100, 100, 2048),  # a Sanic worker
        102: (101, 100, 512),   # its child
        103: (1, 100, 512),     # reparented to init, still in the session
        200: (1, 200, 5120),    # another service
        201: (200, 200, 0),     # a zombie has no RSS worth counting
    })
    assert process_tree(100, proc) == {100, 101, 102, 103}
    assert process_tree(999, proc) == set()
    assert read_stat(proc / "100") == (1, 100)
    assert services_rss_mib({"rasa": 100, "llm": 200, "gone": 999}, proc) == {"rasa": 4.0, "llm": 5.0, "gone": 0.0}


def test_rss_of_this_process_is_real():
    assert services_rss_mib({"me": os.getpid()})["me"] > 10


def result(outcome: Outcome, kind: Kind = Kind.SCRIPTED, latency: float | None = 100.0) -> TurnResult:
    return TurnResult("load-x-0", 0, kind, "hi", outcome, None if latency is None else 200, latency)


def test_report_counts_times_and_fails_on_missing_5xx_error_and_memory():
    results = ([result(Outcome.OK, Kind.SCRIPTED, float(ms)) for ms in range(1, 101)]
               + [result(Outcome.APOLOGY, Kind.OPEN, 5000.0), result(Outcome.RATE_LIMITED, Kind.FORM, 2.0)])
    memory = [{"turns": 0, "rss_mib": {"rasa": 900.0}}, {"turns": 50, "rss_mib": {"rasa": 1000.0}},
              {"turns": 102, "rss_mib": {"rasa": 1050.0}}]
    settings = LoadSettings(conversations=2, turns=51, memory_marks=(50, 100), run_id="t")
    report = build_report(results, settings, 10.0, memory)
    assert report["turns"] == 102 and report["throughput_turns_per_s"] == 10.2
    assert report["outcomes"] == {"ok": 100, "missing": 0, "no_reply": 0, "apology": 1, "rate_limited": 1,
                                  "4xx": 0, "5xx": 0, "error": 0}
    assert report["outcomes_by_kind"]["open"]["apology"] == 1
    assert report["latency_ms"]["scripted"]["p50"] == 50 and report["latency_ms"]["scripted"]["max"] == 100
    assert report["latency_ms"]["open"]["n"] == 1 and report["latency_ms"]["all"]["max"] == 5000
    assert report["memory"]["ratio_last_first"] == {"rasa": 1.05}
    assert report["failures"] == []  # apologies and 429s are reported, not failed
    assert set(report["examples"]) == {"apology", "rate_limited"}
    assert "PASS" in markdown(report)

    for outcome in FAILING:
        bad = build_report(results + [result(Outcome(outcome), latency=None)], settings, 10.0, memory)
        assert bad["failures"] == [f"1 turn(s) {outcome}"]
        assert bad["latency_ms"]["all"]["n"] == 102  # turns without an HTTP answer have no latency
        assert "FAIL" in markdown(bad)

    grown = memory[:-1] + [{"turns": 102, "rss_mib": {"rasa": 1101.0}}]
    assert build_report(results, settings, 10.0, grown)["failures"] == ["rasa RSS grew x1.101 (target <= x1.10)"]


def test_a_service_gone_at_a_memory_mark_fails_the_run():
    memory = [{"turns": 50, "rss_mib": {"rasa": 1000.0, "actions": 300.0}},
              {"turns": 100, "rss_mib": {"rasa": 1001.0, "actions": 0.0}}]
    settings = LoadSettings(conversations=2, turns=50, memory_marks=(50, 100), run_id="t")
    report = build_report([result(Outcome.OK)] * 100, settings, 10.0, memory)
    assert report["failures"] == ["actions was not running at the 100-turn mark (RSS 0)"]
