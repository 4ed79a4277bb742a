"""The action server's Prometheus metrics, in one place (``GET /metrics``).

- ``action_llm_replies_total{outcome}``: open-ended turns by what the visitor got: ``whole`` (the
  LLM's reply as generated; one that ``ACTIONS_LLM_MAX_TOKENS`` stopped mid-sentence ends at its last
  complete sentence), ``cut`` (the deadline or a broken stream came first; the reply ends at its
  last complete sentence), ``apology`` (``utter_llm_unavailable``: nothing usable arrived,
  or the reply guard withheld it), ``rewritten`` (the reply named a price, SKU or product its
  catalog sources do not hold: the visitor got those sources' facts instead, ``ridgeline.grounding``);
- ``action_calls_total{action,outcome}``: action calls by action and ``ok`` (answered) or ``error`` (the
  action raised, or rejected the call: Rasa logs it and the turn goes on without it); an action name
  the server does not have is counted as ``unknown``. Rasa's request for the domain (rasa-sdk's 449,
  after which Rasa calls again with it) is no call of its own: the repeated call is counted;
- ``action_duration_seconds{action}``: histogram of the time an action took, either outcome.
Both are measured around rasa-sdk's executor (``actions.server.MeasuredExecutor``).
- ``action_handoff_notifications_total{channel,outcome}``: a handoff's ticket announced to the team, by
  ``channel`` (``slack``, ``email``) and ``outcome`` (``ok``; ``error``: refused, or the server answered
  an error; ``timeout``: no answer within ``HANDOFF_NOTIFY_TIMEOUT_S``). A failure loses nothing: the
  ticket is in the store database (``python -m review tickets``); it is logged and counted here.

One registry per process. With several Sanic workers (``ACTION_SERVER_SANIC_WORKERS``) each
worker counts its own turns, so one scrape sees one worker's; the default is one worker.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry()
LLM_OUTCOMES = ("whole", "cut", "apology", "rewritten")
llm_replies = Counter("action_llm_replies_total", "Open-ended turns by what the visitor got.", ["outcome"],
                      registry=REGISTRY)
for _outcome in LLM_OUTCOMES:
    llm_replies.labels(_outcome)  # every series exists from the start, at 0


CALL_OUTCOMES = ("ok", "error")
# Seconds: a database look-up takes milliseconds, action_llm_response up to its 20 s LLM budget.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0)
action_calls = Counter("action_calls_total", "Action calls by action and outcome (ok, error).", ["action", "outcome"],
                       registry=REGISTRY)
action_duration = Histogram("action_duration_seconds", "Time an action took, by action.", ["action"],
                            buckets=DURATION_BUCKETS, registry=REGISTRY)


def count_action_call(action: str, outcome: str, seconds: float) -> None:
    if outcome not in CALL_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(CALL_OUTCOMES)}")
    action_calls.labels(action, outcome).inc()
    action_duration.labels(action).observe(seconds)


def count_llm_reply(outcome: str) -> None:
    if outcome not in LLM_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(LLM_OUTCOMES)}")
    llm_replies.labels(outcome).inc()


NOTIFY_CHANNELS = ("slack", "email")
NOTIFY_OUTCOMES = ("ok", "error", "timeout")
handoff_notifications = Counter("action_handoff_notifications_total",
                                "Handoff tickets announced to the team, by channel and outcome.",
                                ["channel", "outcome"], registry=REGISTRY)
for _channel in NOTIFY_CHANNELS:
    for _outcome in NOTIFY_OUTCOMES:
        handoff_notifications.labels(_channel, _outcome)


def count_handoff_notification(channel: str, outcome: str) -> None:
    if channel not in NOTIFY_CHANNELS or outcome not in NOTIFY_OUTCOMES:
        raise ValueError(f"unknown channel {channel!r} or outcome {outcome!r}")
    handoff_notifications.labels(channel, outcome).inc()


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
