"""Rasa's Prometheus metrics, in one place: what the conversations do, counted once per turn (``GET /metrics``).

| metric | what it counts |
| --- | --- |
| ``rasa_turns_total{channel}`` | user messages Rasa handled, by channel (rest, socketio, slack, telegram) |
| ``rasa_turn_duration_seconds{channel}`` | histogram: a turn's wall time, from the gate handing it to Rasa to the last reply sent |
| ``rasa_rate_limited_total`` | messages turned away by the per-sender rate limit (never reached the NLU) |
| ``rasa_intents_total{intent}`` | user messages by the intent the NLU chose (an intent outside the domain: ``other``) |
| ``rasa_intent_confidence`` | histogram: the NLU's confidence in the intent it chose |
| ``rasa_fallbacks_total`` | user messages whose intent is ``nlu_fallback`` (the NLU was unsure; the LLM answers) |
| ``rasa_llm_turns_total`` | turns that ran ``action_llm_response`` |
| ``rasa_apologies_total{reason}`` | turns that apologised instead of answering: ``llm_unavailable`` (the response ``utter_llm_unavailable`` was sent: the LLM failed, timed out before one sentence, or its reply was withheld by the reply guard, which Rasa cannot tell apart: the action server's ``action_llm_replies_total{outcome="apology"}`` is the same count from its side), ``no_reply`` (the gate's ``utter_no_reply``: Rasa said nothing, e.g. the action server is down) |
| ``rasa_handoffs_total`` | turns that ran ``action_human_handoff`` |
| ``rasa_feedback_total{verdict}`` | visitors' verdicts on LLM replies: ``up`` (helpful), ``down`` (not helpful); a click is no turn and no intent in the counts above (``ridgeline.feedback``) |

Who counts what:

- **The channel gate** (``channels/gate.py``), which every message of every channel passes: turns and
  their duration, rate-limited messages, and ``utter_no_reply``, which the gate sends itself, past
  Rasa's tracker.
- **The turn's events**, through an event broker: ``MetricsEventBroker``, configured in endpoints.yml as
  ``event_broker: {type: ridgeline_rasa.metrics.MetricsEventBroker}`` (rasa_project/endpoints.yml, which
  ``make run`` and the image use; compose's and the chart's endpoints). Rasa's tracker store hands an
  event broker exactly the events each save adds (``TrackerStore.stream_events``), while the
  conversation's lock is still held, whatever brought the turn: any channel, Rasa's HTTP API, a
  reminder. Reading the tracker in the gate instead would come after the lock is released, when the
  sender's next message may already have added its own events, and could not say which events were
  this turn's. The price is the same for both: Rasa reads the conversation's current session once more
  per save to find the new events. Rasa takes one event broker, so a Kafka or RabbitMQ broker for
  analytics would take this one's place (docs/operations.md).

"Once per turn": a user event opens a turn (intent, confidence, fallback); an LLM turn, a handoff and
each apology reason count at most once until the sender's next user event, however many matching
events the turn has. Counting never fails a save: an event the broker cannot read is logged and skipped.

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (read in ``ridgeline_rasa.settings``; a process
basic of ``ridgeline.settings``, so the launchers pass it; ``make run`` sets it to an empty folder of
its run), every Sanic worker writes its counts there and ``/metrics`` adds them all up, so one scrape
sees every worker (prometheus-client's multiprocess mode). Without it the process counts alone, which
is right for one worker (Rasa's default; the chart and compose run one per pod or container and scale
with replicas, each scraped on its own). With ``SANIC_WORKERS`` above 1 (and the Redis lock store Rasa
then needs), set it to an empty folder that each start of the container empties (e.g. under its
``/tmp``), or each scrape sees one worker's counts.

``/metrics`` is added to Rasa's app at start-up (``ridgeline_rasa.install``), outside the channels'
``/webhooks`` prefix, so the chart's Ingress (``/webhooks``, ``/socket.io``) never routes it; only
Prometheus reaches it (docs/operations.md).
"""

from __future__ import annotations

import functools
import logging
import os
from collections import OrderedDict
from typing import Any, Collection, Dict, Mapping, Optional, Set

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ridgeline import feedback
from ridgeline_rasa import settings

logger = logging.getLogger(__name__)

# Seconds: a scripted turn takes tens of milliseconds, one that asks the LLM up to its 20 s budget.
TURN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
APOLOGY_REASONS = ("llm_unavailable", "no_reply")
LLM_ACTION = "action_llm_response"
HANDOFF_ACTION = "action_human_handoff"
APOLOGY_RESPONSE = "utter_llm_unavailable"
FALLBACK_INTENT = "nlu_fallback"
OTHER = "other"  # an intent label outside the domain (a visitor can type "/anything")
MAX_INTENT_LABELS = 200  # before the domain is known: at most this many intent labels
MAX_LABEL_CHARS = 64  # a channel name longer than this is someone's invention


class ConversationMetrics:
    """The metrics of one process, on ``registry`` (``None``: unregistered, for multiprocess mode)."""

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry
        r = registry
        self.turns = Counter("rasa_turns_total", "User messages Rasa handled, by channel.", ["channel"], registry=r)
        self.turn_duration = Histogram(
            "rasa_turn_duration_seconds", "Wall time of a turn, from the channel gate to the last reply sent.",
            ["channel"], buckets=TURN_BUCKETS, registry=r)
        self.rate_limited = Counter("rasa_rate_limited_total",
                                    "Messages turned away by the per-sender rate limit.", registry=r)
        self.intents = Counter("rasa_intents_total", "User messages by the intent the NLU chose.", ["intent"],
                               registry=r)
        self.intent_confidence = Histogram("rasa_intent_confidence", "The NLU's confidence in the intent it chose.",
                                           buckets=CONFIDENCE_BUCKETS, registry=r)
        self.fallbacks = Counter("rasa_fallbacks_total", "User messages the NLU was unsure of (nlu_fallback).",
                                 registry=r)
        self.llm_turns = Counter("rasa_llm_turns_total", "Turns that ran action_llm_response.", registry=r)
        self.apologies = Counter("rasa_apologies_total", "Turns that apologised instead of answering, by reason.",
                                 ["reason"], registry=r)
        self.handoffs = Counter("rasa_handoffs_total", "Turns that ran action_human_handoff.", registry=r)
        self.feedback = Counter("rasa_feedback_total", "Visitors' verdicts on LLM replies (up: helpful, "
                                "down: not helpful).", ["verdict"], registry=r)
        for reason in APOLOGY_REASONS:
            self.apologies.labels(reason)  # both series exist from the start, at 0
        for verdict in feedback.VERDICTS:
            self.feedback.labels(verdict)
        self._intent_labels: Set[str] = set()

    # -- the gate's
    def count_turn(self, channel: Optional[str], seconds: float) -> None:
        label = channel if channel and len(channel) <= MAX_LABEL_CHARS else "unknown"
        self.turns.labels(label).inc()
        self.turn_duration.labels(label).observe(seconds)

    def count_rate_limited(self) -> None:
        self.rate_limited.inc()

    def count_apology(self, reason: str) -> None:
        if reason not in APOLOGY_REASONS:
            raise ValueError(f"unknown apology reason {reason!r}; one of {', '.join(APOLOGY_REASONS)}")
        self.apologies.labels(reason).inc()

    # -- the events'
    def count_intent(self, intent: Optional[str], confidence: Optional[float],
                     known: Optional[Collection[str]] = None) -> None:
        """A user message's intent; ``known``: the domain's intents (any other is counted as ``other``)."""
        name = intent or OTHER
        if known is not None:
            label = name if name in known else OTHER
        elif name in self._intent_labels or len(self._intent_labels) < MAX_INTENT_LABELS:
            label = name
        else:
            label = OTHER
        self._intent_labels.add(label)
        self.intents.labels(label).inc()
        if isinstance(confidence, (int, float)) and 0.0 <= confidence <= 1.0:
            self.intent_confidence.observe(confidence)
        if intent == FALLBACK_INTENT:
            self.fallbacks.inc()


class TurnCounter:
    """Counts each kind of event once per turn of a sender (a turn ends at the sender's next user event).

    At most ``max_senders`` senders are remembered (the least recently seen are forgotten first).
    """

    def __init__(self, metrics: Optional[ConversationMetrics] = None,
                 known_intents: Optional[Any] = None, max_senders: int = 10_000) -> None:
        self._metrics = metrics
        self.known_intents = known_intents or domain_intents
        self.max_senders = max_senders
        self._counted: "OrderedDict[str, Set[str]]" = OrderedDict()

    @property
    def metrics(self) -> ConversationMetrics:
        return self._metrics or current()

    def count(self, event: Mapping[str, Any]) -> None:
        """Count one event, as Rasa publishes it: ``{"sender_id": ..., "event": "user"|"action"|"bot", ...}``."""
        kind = event.get("event")
        sender = str(event.get("sender_id"))
        if kind == "user" and feedback.is_feedback_event(event):
            # A verdict button's click: counted as what it is, not as a turn's intent. A malformed
            # one (typed by hand) is not counted at all.
            verdict = feedback.verdict_of(event)
            if verdict is not None:
                self.metrics.feedback.labels(verdict.verdict).inc()
        elif kind == "user":
            self._counted.pop(sender, None)
            self._remember(sender)
            intent = (event.get("parse_data") or {}).get("intent") or {}
            self.metrics.count_intent(intent.get("name"), intent.get("confidence"), self.known_intents())
        elif kind == "action" and event.get("name") == LLM_ACTION:
            self._once(sender, "llm", self.metrics.llm_turns.inc)
        elif kind == "action" and event.get("name") == HANDOFF_ACTION:
            self._once(sender, "handoff", self.metrics.handoffs.inc)
        elif kind == "bot" and (event.get("metadata") or {}).get("utter_action") == APOLOGY_RESPONSE:
            self._once(sender, "llm_unavailable", lambda: self.metrics.count_apology("llm_unavailable"))

    def _remember(self, sender: str) -> Set[str]:
        counted = self._counted.pop(sender, None) or set()
        self._counted[sender] = counted
        while len(self._counted) > self.max_senders:
            self._counted.popitem(last=False)
        return counted

    def _once(self, sender: str, what: str, count: Any) -> None:
        counted = self._remember(sender)
        if what not in counted:
            counted.add(what)
            count()


class MetricsEventBroker:
    """Rasa's event broker that counts the turns' events (``event_broker: type: ridgeline_rasa.metrics.MetricsEventBroker``).

    Rasa loads it by its dotted path and calls what ``rasa.core.brokers.broker.EventBroker`` defines:
    ``from_endpoint_config``, ``publish``, ``is_ready`` and ``close``. It does not subclass it, so that
    this module (which the gate imports) needs no Rasa: tests/ridgeline_rasa/test_metrics.py checks that
    Rasa's own factory builds it and that a tracker store publishes to it.
    """

    def __init__(self, counter: Optional[TurnCounter] = None) -> None:
        self.counter = counter or TurnCounter()

    @classmethod
    async def from_endpoint_config(cls, broker_config: Any = None, event_loop: Any = None) -> "MetricsEventBroker":
        return cls()

    def publish(self, event: Dict[str, Any]) -> None:
        try:
            self.counter.count(event)
        except Exception:  # a count is never worth a failed save
            logger.exception("could not count a %r event", event.get("event") if isinstance(event, dict) else event)

    def is_ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# -- the process's metrics, its domain and its /metrics

_app: Any = None


def attach(app: Any) -> None:
    """Know the Rasa server's app: its agent's domain says which intents are real (``install`` calls it)."""
    global _app
    _app = app


@functools.lru_cache(maxsize=4)
def _frozen(intents: tuple) -> frozenset:
    return frozenset(intents)


def domain_intents() -> Optional[Collection[str]]:
    """The intents of the loaded model's domain (Rasa's defaults, nlu_fallback among them), or None."""
    domain = getattr(getattr(getattr(_app, "ctx", None), "agent", None), "domain", None)
    intents = getattr(domain, "intents", None)
    return _frozen(tuple(intents)) if intents else None


@functools.lru_cache(maxsize=1)
def current() -> ConversationMetrics:
    """This process's metrics: registered here, or, with ``PROMETHEUS_MULTIPROC_DIR``, written to that folder."""
    folder = settings.current().metrics.multiproc_dir
    if folder:
        os.makedirs(folder, exist_ok=True)
        return ConversationMetrics(registry=None)
    return ConversationMetrics(registry=CollectorRegistry())


def render() -> tuple[bytes, str]:
    """The exposition text (every worker's counts in multiprocess mode) and its content type."""
    folder = settings.current().metrics.multiproc_dir
    if folder:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(current().registry), CONTENT_TYPE_LATEST


def add_route(app: Any) -> None:
    """``GET /metrics`` on Rasa's app (idempotent); before the server starts, while routes may still be added."""
    if getattr(app.ctx, "ridgeline_metrics", False):
        return
    from sanic.response import raw

    async def metrics_endpoint(_request: Any) -> Any:
        payload, content_type = render()
        return raw(payload, content_type=content_type)

    app.add_route(metrics_endpoint, "/metrics", methods=["GET"], name="ridgeline_metrics")
    app.ctx.ridgeline_metrics = True
