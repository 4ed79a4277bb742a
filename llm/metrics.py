"""Every Prometheus metric of the LLM service, in one place.

Names are prefixed ``llm_`` and carry their unit. Each app gets its own
registry (so tests can build many apps in one process); ``/metrics`` renders
it and is not itself counted, nor are ``/health``, ``/ready`` and ``/v1/models``.

Who observes what:
- the HTTP layer: requests by status (499 when the client went away), request
  duration, token counters and finish reasons of successful requests, requests
  in progress;
- the scheduler, through ``observe_step``, ``observe_engine_step`` and
  ``observe_timings``: batch size per decode step, model calls by kind (prefill
  chunk or decode), queue time, time to first token, time per output token;
- an engine with a prefix cache, through ``observe_prefix_cache``: prompt tokens
  looked up and found (``llm_prefix_cache_queries_total``,
  ``llm_prefix_cache_hit_tokens_total``, vLLM's names);
- ``/metrics`` itself, at scrape time: running and waiting requests, readiness,
  and the CUDA memory high-water mark on a GPU.
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
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)
# A GPU decodes a token in ~10 ms, a CPU in 0.1-1 s.
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "llm_requests_total",
            "Chat-completion requests finished, by HTTP status code (499: the client disconnected).",
            ["status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "llm_request_duration_seconds",
            "Wall time of chat-completion requests, from arrival to the last byte, any status.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "llm_request_queue_time_seconds",
            "Time requests waited for a batch slot, from arrival to the start of their prefill.",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "llm_time_to_first_token_seconds",
            "Time from arrival to the first generated token (queue time plus prefill).",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.time_per_output_token = Histogram(
            "llm_time_per_output_token_seconds",
            "Mean time between consecutive generated tokens of a request, after the first.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "llm_prompt_tokens_total", "Prompt tokens of successful requests.", registry=r
        )
        self.generation_tokens = Counter(
            "llm_generation_tokens_total", "Tokens generated for successful requests.", registry=r
        )
        self.finished = Counter(
            "llm_request_finish_total",
            "Successful requests by finish reason (stop or length).",
            ["finish_reason"],
            registry=r,
        )
        self.requests_in_progress = Gauge(
            "llm_requests_in_progress",
            "Chat-completion requests the HTTP layer is handling (running, waiting, or being answered).",
            registry=r,
        )
        self.requests_running = Gauge(
            "llm_requests_running", "Requests in the running batch on the model.", registry=r
        )
        self.requests_waiting = Gauge(
            "llm_requests_waiting", "Requests queued for a batch slot.", registry=r
        )
        self.batch_size = Histogram(
            "llm_batch_size_requests",
            "Requests in the batch at each decode step.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.engine_steps = Counter(
            "llm_engine_steps_total",
            "Model calls of the scheduler, by kind: prefill_chunk (part of new prompts) or decode (one token per row).",
            ["kind"],
            registry=r,
        )
        self.prefix_cache_queries = Counter(
            "llm_prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache (as vLLM counts its own).",
            registry=r,
        )
        self.prefix_cache_hit_tokens = Counter(
            "llm_prefix_cache_hit_tokens",
            "Prompt tokens found in the prefix cache, whose KV was reused instead of computed.",
            registry=r,
        )
        self.model_ready = Gauge(
            "llm_model_ready", "1 once the model is loaded and warmed up, else 0.", registry=r
        )
        self.cuda_memory_peak = Gauge(
            "llm_cuda_memory_peak_bytes",
            "Most CUDA memory PyTorch has allocated in this process (0 without a GPU).",
            registry=r,
        )

    # --- HTTP layer ---------------------------------------------------------------------------

    def observe_request(self, status: int, duration_s: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.request_duration.observe(duration_s)

    def observe_completion(self, prompt_tokens: int, completion_tokens: int, finish_reason: str) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(completion_tokens)
        self.finished.labels(finish_reason=finish_reason).inc()

    # --- scheduler ----------------------------------------------------------------------------

    def observe_step(self, batch_size: int) -> None:
        self.batch_size.observe(batch_size)

    def observe_engine_step(self, kind: str) -> None:
        self.engine_steps.labels(kind=kind).inc()

    def observe_prefix_cache(self, queried_tokens: int, hit_tokens: int) -> None:
        self.prefix_cache_queries.inc(queried_tokens)
        self.prefix_cache_hit_tokens.inc(hit_tokens)

    def observe_timings(
        self, queue_s: float | None, ttft_s: float | None, per_token_s: float | None
    ) -> None:
        """Timings of one request that left the scheduler; ``None`` for phases it never reached."""
        if queue_s is not None:
            self.queue_time.observe(queue_s)
        if ttft_s is not None:
            self.time_to_first_token.observe(ttft_s)
        if per_token_s is not None:
            self.time_per_output_token.observe(per_token_s)

    # --- scrape -------------------------------------------------------------------------------

    def set_engine_state(self, ready: bool, running: int, waiting: int, cuda_peak_bytes: int = 0) -> None:
        self.model_ready.set(1 if ready else 0)
        self.requests_running.set(running)
        self.requests_waiting.set(waiting)
        self.cuda_memory_peak.set(cuda_peak_bytes)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
