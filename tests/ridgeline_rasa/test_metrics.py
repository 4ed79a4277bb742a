"""Rasa's /metrics (ridgeline_rasa/metrics.py): what the gate and the turns' events count, once per turn.

The counting itself needs no Rasa and runs here; that Rasa builds the event broker from endpoints.yml,
that its tracker store publishes each turn's events to it once, and that /metrics is a route of Rasa's
Sanic app run in Rasa's own virtualenv, as Rasa runs them. The whole stack: tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ridgeline_rasa import metrics
from ridgeline_rasa.channels.gate import GateSettings, MessageGate
from ridgeline_rasa.metrics import ConversationMetrics, MetricsEventBroker, TurnCounter
from ridgeline_rasa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"
DOMAIN = frozenset({"greet", "faq", "open_question", "human_handoff", "nlu_fallback", "restart"})


def samples(registry: CollectorRegistry) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a registry, as a scrape would read them."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return samples(registry).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def conv() -> ConversationMetrics:
    return ConversationMetrics(CollectorRegistry())


# --- the turns' events --------------------------------------------------------------------------------------


def user(sender: str, intent: str, confidence: float = 0.9) -> dict:
    return {"sender_id": sender, "event": "user", "text": "…",
            "parse_data": {"intent": {"name": intent, "confidence": confidence}}}


def action(sender: str, name: str) -> dict:
    return {"sender_id": sender, "event": "action", "name": name}


def bot(sender: str, response: str | None) -> dict:
    return {"sender_id": sender, "event": "bot", "text": "…", "metadata": {"utter_action": response} if response else {}}


def test_each_kind_of_turn_is_counted_from_its_events(conv):
    broker = MetricsEventBroker(TurnCounter(conv, known_intents=lambda: DOMAIN))
    conversation = [
        user("a", "greet", 0.98), action("a", "utter_greet"), bot("a", "utter_greet"), action("a", "action_listen"),
        user("a", "faq", 0.95), action("a", "utter_faq"), bot("a", "utter_faq/returns"),
        user("a", "open_question", 0.7), action("a", "action_llm_response"), bot("a", None),
        user("a", "nlu_fallback", 0.3), action("a", "action_llm_response"), bot("a", "utter_llm_unavailable"),
        user("a", "human_handoff", 0.99), action("a", "action_human_handoff"), bot("a", "utter_handoff"),
    ]
    for event in conversation:
        broker.publish(event)
    r = conv.registry
    assert {i: value(r, "rasa_intents_total", intent=i) for i in ("greet", "faq", "open_question", "nlu_fallback",
                                                                   "human_handoff")} == dict.fromkeys(
        ("greet", "faq", "open_question", "nlu_fallback", "human_handoff"), 1.0)
    assert value(r, "rasa_intent_confidence_count") == 5
    assert value(r, "rasa_intent_confidence_sum") == pytest.approx(0.98 + 0.95 + 0.7 + 0.3 + 0.99)
    assert value(r, "rasa_intent_confidence_bucket", le="0.5") == 1  # the fallback's 0.3
    assert value(r, "rasa_fallbacks_total") == 1
    assert value(r, "rasa_llm_turns_total") == 2
    assert value(r, "rasa_apologies_total", reason="llm_unavailable") == 1
    assert value(r, "rasa_apologies_total", reason="no_reply") == 0  # the gate's, not an event
    assert value(r, "rasa_handoffs_total") == 1


def test_a_turn_counts_each_thing_once_however_many_events_say_it(conv):
    counter = TurnCounter(conv, known_intents=lambda: DOMAIN)
    for event in [user("a", "open_question"), action("a", "action_llm_response"), bot("a", "utter_llm_unavailable"),
                  action("a", "action_llm_response"), bot("a", "utter_llm_unavailable"),
                  user("b", "human_handoff"), action("b", "action_human_handoff"), action("b", "action_human_handoff"),
                  action("a", "action_llm_response")]:  # still a's turn: b's message does not end it
        counter.count(event)
    assert value(conv.registry, "rasa_llm_turns_total") == 1
    assert value(conv.registry, "rasa_apologies_total", reason="llm_unavailable") == 1
    assert value(conv.registry, "rasa_handoffs_total") == 1
    counter.count(user("a", "open_question"))  # a's next turn
    counter.count(action("a", "action_llm_response"))
    assert value(conv.registry, "rasa_llm_turns_total") == 2


def verdict(sender: str, value: str, reply_id: str = "0123456789ab") -> dict:
    return {"sender_id": sender, "event": "user", "text": f'/feedback{{"verdict":"{value}","reply_id":"{reply_id}"}}',
            "parse_data": {"intent": {"name": "feedback", "confidence": 1.0},
                           "entities": [{"entity": "verdict", "value": value},
                                        {"entity": "reply_id", "value": reply_id}]}}


def test_verdicts_are_counted_by_verdict_and_not_as_intents(conv):
    counter = TurnCounter(conv, known_intents=lambda: DOMAIN | {"feedback"})
    for event in (user("a", "open_question"), action("a", "action_llm_response"), verdict("a", "down"),
                  bot("a", "utter_feedback_thanks"), verdict("b", "up"), verdict("b", "down"),
                  verdict("c", "meh")):  # a malformed one, typed by hand: not counted
        counter.count(event)
    r = conv.registry
    assert value(r, "rasa_feedback_total", verdict="down") == 2
    assert value(r, "rasa_feedback_total", verdict="up") == 1
    assert value(r, "rasa_intents_total", intent="feedback") == 0
    assert value(r, "rasa_intents_total", intent="open_question") == 1
    assert value(r, "rasa_llm_turns_total") == 1


def test_a_verdict_is_no_turn_of_the_gate(conv):
    gate = MessageGate(GateSettings(4000, 100, 30.0), metrics=conv)

    async def rasa_thanks(msg):
        await msg.output_channel.send_response(msg.sender_id, {"text": "Thanks for telling us."})

    asyncio.run(gate.process(rasa_thanks, message('/feedback{"verdict":"up","reply_id":"0123456789ab"}')))
    asyncio.run(gate.process(rasa_thanks, message("hello")))
    assert value(conv.registry, "rasa_turns_total", channel="rest") == 1
    assert value(conv.registry, "rasa_turn_duration_seconds_count", channel="rest") == 1


def test_intent_labels_stay_within_the_domain(conv):
    counter = TurnCounter(conv, known_intents=lambda: DOMAIN)
    for name in ("greet", "made_up_by_a_visitor", "another/one", None):
        counter.count(user("a", name))
    assert value(conv.registry, "rasa_intents_total", intent="greet") == 1
    assert value(conv.registry, "rasa_intents_total", intent="other") == 3
    assert not [k for k in samples(conv.registry) if k[0] == "rasa_intents_total" and "made_up" in str(k)]


def test_without_a_domain_at_most_a_bounded_number_of_intent_labels(conv):
    counter = TurnCounter(conv, known_intents=lambda: None)
    for i in range(metrics.MAX_INTENT_LABELS + 50):
        counter.count(user("a", f"intent_{i}"))
    labels = {dict(k[1])["intent"] for k in samples(conv.registry) if k[0] == "rasa_intents_total"}
    assert len(labels) == metrics.MAX_INTENT_LABELS + 1 and "other" in labels
    assert value(conv.registry, "rasa_intents_total", intent="other") == 50


def test_sender_memory_is_bounded(conv):
    counter = TurnCounter(conv, known_intents=lambda: DOMAIN, max_senders=10)
    for i in range(100):
        counter.count(user(f"s{i}", "greet"))
        counter.count(action(f"s{i}", "action_llm_response"))
    assert len(counter._counted) == 10
    assert value(conv.registry, "rasa_llm_turns_total") == 100


@pytest.mark.parametrize("event", [{}, {"event": "user"}, {"event": "user", "parse_data": {"intent": None}},
                                   {"event": "bot", "metadata": None}, {"event": "action", "name": None},
                                   {"event": "user", "parse_data": {"intent": {"name": "greet", "confidence": "x"}}}])
def test_an_odd_event_never_fails_the_save(conv, event):
    MetricsEventBroker(TurnCounter(conv, known_intents=lambda: DOMAIN)).publish(event)


def test_a_broken_counter_is_logged_not_raised(caplog):
    class Broken:
        def count(self, event):
            raise RuntimeError("boom")

    MetricsEventBroker(Broken()).publish({"event": "user"})
    assert "could not count a 'user' event" in caplog.text


def test_the_domain_comes_from_the_running_agent():
    metrics.attach(SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(domain=SimpleNamespace(
        intents=["greet", "nlu_fallback"])))))
    try:
        assert metrics.domain_intents() == {"greet", "nlu_fallback"}
        metrics.attach(SimpleNamespace(ctx=SimpleNamespace(agent=None)))  # the model is still loading
        assert metrics.domain_intents() is None
    finally:
        metrics.attach(None)


# --- the gate's ---------------------------------------------------------------------------------------------


class Output:
    def __init__(self, channel: str = "rest") -> None:
        self.channel = channel
        self.sent: list = []

    def name(self) -> str:
        return self.channel

    async def send_response(self, recipient_id, message) -> None:
        self.sent.append(message)


def message(text: str, sender: str = "s1", channel: str | None = "rest") -> SimpleNamespace:
    return SimpleNamespace(text=text, sender_id=sender, output_channel=Output("collector"), input_channel=channel)


def test_the_gate_counts_every_turn_by_channel_with_its_duration(conv):
    now = [1000.0]  # the gate's clock, moved by "Rasa" below: durations exact, whatever the machine's load
    gate = MessageGate(GateSettings(4000, 100, 30.0), clock=lambda: now[0], metrics=conv)

    async def rasa_answers(msg):
        now[0] += 0.03
        await msg.output_channel.send_response(msg.sender_id, {"text": "hello"})

    for channel in ("rest", "rest", "socketio"):
        asyncio.run(gate.process(rasa_answers, message("hi", channel=channel)))
    r = conv.registry
    assert value(r, "rasa_turns_total", channel="rest") == 2
    assert value(r, "rasa_turns_total", channel="socketio") == 1
    assert value(r, "rasa_turn_duration_seconds_count", channel="rest") == 2
    assert value(r, "rasa_turn_duration_seconds_sum", channel="rest") == pytest.approx(0.06)
    assert value(r, "rasa_turn_duration_seconds_bucket", channel="rest", le="0.025") == 0
    assert value(r, "rasa_apologies_total", reason="no_reply") == 0


def test_a_channel_without_a_name_on_the_message_is_named_by_its_output(conv):
    gate = MessageGate(GateSettings(4000, 100, 30.0), metrics=conv)
    msg = message("hi", channel=None)
    msg.output_channel = Output("telegram")
    asyncio.run(gate.process(lambda m: m.output_channel.send_response(m.sender_id, {"text": "x"}), msg))
    assert value(conv.registry, "rasa_turns_total", channel="telegram") == 1


@pytest.mark.parametrize("fails", [False, True], ids=["silent", "raises"])
def test_a_silent_turn_is_an_apology_of_the_gate(conv, fails):
    gate = MessageGate(GateSettings(4000, 100, 30.0), metrics=conv)

    async def rasa(msg):
        if fails:
            raise RuntimeError("the action server is down")

    asyncio.run(gate.process(rasa, message("hi")))
    assert value(conv.registry, "rasa_apologies_total", reason="no_reply") == 1
    assert value(conv.registry, "rasa_turns_total", channel="rest") == 1


def test_rate_limited_messages_are_counted_and_are_no_turns(conv):
    gate = MessageGate(GateSettings(4000, 2, 30.0), metrics=conv)
    handled = []

    async def rasa(msg):
        handled.append(msg.text)
        await msg.output_channel.send_response(msg.sender_id, {"text": "ok"})

    guarded = gate.guard(rasa)
    for _ in range(5):
        asyncio.run(guarded(message("hi", sender="flood")))
    assert gate.retry_after("flood") is not None  # the REST channel asks the gate directly: counted too
    assert len(handled) == 2
    assert value(conv.registry, "rasa_rate_limited_total") == 4
    assert value(conv.registry, "rasa_turns_total", channel="rest") == 2


def test_unknown_apology_reasons_are_refused(conv):
    with pytest.raises(ValueError, match="no_reply"):
        conv.count_apology("withheld")


# --- exposition, one process and several -----------------------------------------------------------------


def test_every_series_of_the_dashboard_is_exposed_from_the_start():
    names = {f.name for f in text_string_to_metric_families(generate_latest(ConversationMetrics(
        CollectorRegistry()).registry).decode())}
    assert {"rasa_turns", "rasa_turn_duration_seconds", "rasa_rate_limited", "rasa_intents", "rasa_intent_confidence",
            "rasa_fallbacks", "rasa_llm_turns", "rasa_apologies", "rasa_handoffs", "rasa_feedback"} <= names


def test_the_multiprocess_folder_is_read_from_the_environment():
    assert Settings.from_env({}).metrics.multiproc_dir is None
    assert Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": "/tmp/m"}).metrics.multiproc_dir == "/tmp/m"


WORKER = r"""
import asyncio, sys
from ridgeline_rasa import metrics
from ridgeline_rasa.channels.gate import GateSettings, MessageGate
from types import SimpleNamespace

class Out:
    def name(self): return "rest"
    async def send_response(self, r, m): pass

gate = MessageGate(GateSettings(4000, 100, 30.0))
for _ in range(int(sys.argv[1])):
    asyncio.run(gate.process(lambda m: m.output_channel.send_response("s", {"text": "x"}),
                             SimpleNamespace(text="hi", sender_id="s", output_channel=Out(), input_channel="rest")))
broker = metrics.MetricsEventBroker()
broker.publish({"sender_id": "s", "event": "user", "parse_data": {"intent": {"name": "greet", "confidence": 1.0}}})
broker.publish({"sender_id": "s", "event": "action", "name": "action_llm_response"})
"""

SCRAPE = "from ridgeline_rasa import metrics; print(metrics.render()[0].decode())"


def test_several_workers_are_added_up_in_one_scrape(tmp_path):
    """prometheus-client's multiprocess mode: three 'workers' count, a fourth process renders them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    for turns in (1, 2, 4):
        subprocess.run([sys.executable, "-c", WORKER, str(turns)], env=env, check=True, timeout=60, cwd=ROOT)
    text = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True, timeout=60, cwd=ROOT,
                          capture_output=True, text=True).stdout
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(text) for s in f.samples}
    assert found[("rasa_turns_total", (("channel", "rest"),))] == 7
    assert found[("rasa_turn_duration_seconds_count", (("channel", "rest"),))] == 7
    assert found[("rasa_llm_turns_total", ())] == 3
    assert found[("rasa_intents_total", (("intent", "greet"),))] == 3
    assert found[("rasa_apologies_total", (("reason", "llm_unavailable"),))] == 0


# --- in Rasa ------------------------------------------------------------------------------------------------

RASA_SCRIPT = r"""
import asyncio
from prometheus_client.parser import text_string_to_metric_families
from rasa.core.actions.action import create_bot_utterance
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config
from sanic import Blueprint, Sanic
from ridgeline_rasa import install, metrics

async def main():
    config = read_endpoint_config("rasa_project/endpoints.yml", "event_broker")
    broker = await EventBroker.create(config)
    print("broker:", type(broker).__name__)
    domain = Domain.from_yaml("intents: [greet, open_question]\nresponses:\n  utter_llm_unavailable:\n  - text: sorry\n")
    store = InMemoryTrackerStore(domain, event_broker=broker)
    tracker = await store.get_or_create_tracker("visitor")
    tracker.update(UserUttered("xqz", {"name": "nlu_fallback", "confidence": 0.2}))
    tracker.update(ActionExecuted("action_llm_response"))
    # as RemoteAction utters a response the action server named
    tracker.update(create_bot_utterance({"text": "sorry", "utter_action": "utter_llm_unavailable"}))
    await store.save(tracker)
    await store.save(tracker)  # nothing new: nothing counted
    tracker.update(UserUttered("a person please", {"name": "human_handoff", "confidence": 0.9}))
    tracker.update(ActionExecuted("action_human_handoff"))
    await store.save(tracker)

    app = Sanic("metrics_test")
    blueprint = Blueprint("a_channel")
    install.on_server_start(blueprint)
    app.blueprint(blueprint, url_prefix="/webhooks/a_channel")
    for listener in app.listeners["main_process_start"]:
        await listener(app, asyncio.get_running_loop())
    app.router.finalize()
    route, handler, _ = app.router.get("/metrics", "GET", None)
    response = await handler(None)
    print("status:", response.status, response.content_type)
    for family in text_string_to_metric_families(response.body.decode()):
        for s in family.samples:
            if s.name.startswith("rasa_") and not s.name.endswith(("_bucket", "_created")):
                print("sample:", s.name, sorted(s.labels.items()), s.value)

asyncio.run(main())
"""


@pytest.mark.slow
def test_rasa_builds_the_broker_from_endpoints_and_serves_the_counts():
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
           "RASA_TELEMETRY_ENABLED": "false", "ACTION_SERVER_TOKEN": "t", "PYTHONWARNINGS": "ignore"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run([str(RASA_PYTHON), "-c", RASA_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "broker: MetricsEventBroker" in lines
    assert any(line.startswith("status: 200 text/plain; version=") for line in lines), lines
    counted = {line for line in lines if line.startswith("sample:")}
    assert {
        "sample: rasa_intents_total [('intent', 'nlu_fallback')] 1.0",
        "sample: rasa_intents_total [('intent', 'human_handoff')] 1.0",
        "sample: rasa_fallbacks_total [] 1.0",
        "sample: rasa_llm_turns_total [] 1.0",
        "sample: rasa_apologies_total [('reason', 'llm_unavailable')] 1.0",
        "sample: rasa_apologies_total [('reason', 'no_reply')] 0.0",
        "sample: rasa_handoffs_total [] 1.0",
        "sample: rasa_intent_confidence_count [] 2.0",
    } <= counted, counted
