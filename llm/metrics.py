"""Every Prometheus metric of the LLM service, in one place.

Names are prefixed ``llm_`` and carry their unit. Each app gets its own
registry (so tests can build many apps in one process); ``/metrics`` renders
it and is not itself counted, nor are ``/health`` and ``/ready``.

Queue time, time to first token, time per output token and batch size join
here when the batching scheduler and streaming arrive.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# Seconds; a CPU-bound 1.5B model can take tens of seconds for a long reply.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "llm_requests_total",
            "Chat-completion requests finished, by HTTP status code.",
            ["status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "llm_request_duration_seconds",
            "Wall time of chat-completion requests, from arrival to response, any status.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "llm_prompt_tokens_total", "Prompt tokens of successful requests.", registry=self.registry
        )
        self.generation_tokens = Counter(
            "llm_generation_tokens_total", "Tokens generated for successful requests.", registry=self.registry
        )
        self.finished = Counter(
            "llm_request_finish_total",
            "Successful requests by finish reason (stop or length).",
            ["finish_reason"],
            registry=self.registry,
        )
        self.requests_in_progress = Gauge(
            "llm_requests_in_progress",
            "Chat-completion requests running on or waiting for the model.",
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "llm_model_ready", "1 once the model is loaded and warmed up, else 0.", registry=self.registry
        )

    def observe_request(self, status: int, duration_s: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.request_duration.observe(duration_s)

    def observe_completion(self, prompt_tokens: int, completion_tokens: int, finish_reason: str) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(completion_tokens)
        self.finished.labels(finish_reason=finish_reason).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
