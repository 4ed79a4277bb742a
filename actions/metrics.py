"""The action server's Prometheus metrics, in one place (``GET /metrics``).

- ``action_llm_replies_total{outcome}``: open-ended turns by what the visitor got: ``whole`` (the
  LLM's reply as generated; one that ``ACTIONS_LLM_MAX_TOKENS`` stopped mid-sentence ends at its last
  complete sentence), ``cut`` (the deadline or a broken stream came first; the reply ends at its
  last complete sentence), ``apology`` (``utter_llm_unavailable``: nothing usable arrived,
  or the reply guard withheld it), ``rewritten`` (the reply named a price, SKU or product its
  catalog sources do not hold: the visitor got those sources' facts instead, ``ridgeline.grounding``).

One registry per process. With several Sanic workers (``ACTION_SERVER_SANIC_WORKERS``) each
worker counts its own turns, so one scrape sees one worker's; the default is one worker.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

REGISTRY = CollectorRegistry()
LLM_OUTCOMES = ("whole", "cut", "apology", "rewritten")
llm_replies = Counter("action_llm_replies_total", "Open-ended turns by what the visitor got.", ["outcome"],
                      registry=REGISTRY)
for _outcome in LLM_OUTCOMES:
    llm_replies.labels(_outcome)  # every series exists from the start, at 0


def count_llm_reply(outcome: str) -> None:
    if outcome not in LLM_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(LLM_OUTCOMES)}")
    llm_replies.labels(outcome).inc()


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
