"""How fast the service lets go of abandoned requests: ``python -m tools.bench.llm.abandon``.

Starts ``python -m llm serve`` on a benchmark model (``--model-shape``, as in
``python -m tools.bench.llm``), sends ``--clients`` non-streaming requests at once
whose client timeout (``--client-timeout-s``) is far below their generation
time, and after the last client has given up polls ``/metrics`` until the
running and waiting gauges are 0. It prints the time that took, the engine
steps run after the last disconnect (``llm_engine_steps_total``), the request
counter by status (each request once, as 499), and how long a new request
then takes to be served. Last, with ``--clients`` new requests running or queued,
it sends SIGTERM and times how long the service takes to drain and exit.

    python -m tools.bench.llm.abandon --model-shape qwen2.5-1.5b --dtype bfloat16 --cpu-threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
from pathlib import Path
from typing import Sequence

import httpx

from tools.bench.llm.measure import make_conversations
from tools.bench.llm.models import resolve_model
from tools.procs import LLMServer


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.llm.abandon", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-shape", default="tiny", help="tiny, qwen2.5-1.5b or a model directory.")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--clients", type=int, default=8, help="Requests sent at once. Default: 8.")
    parser.add_argument("--client-timeout-s", type=float, default=5.0, help="When each client gives up. Default: 5.")
    parser.add_argument("--prompt-words", type=int, default=300, help="Words per prompt. Default: 300.")
    parser.add_argument("--max-tokens", type=int, default=512, help="max_tokens of each request. Default: 512.")
    parser.add_argument("--prefill-chunk-tokens", type=int, default=256, help="The server's setting. Default: 256.")
    parser.add_argument("--cpu-threads", type=int, default=1, help="The server's setting. Default: 1.")
    parser.add_argument("--ready-timeout-s", type=float, default=900.0)
    parser.add_argument("--output", type=Path, default=Path("var/bench"), help="Log and JSON go here.")
    return parser


def metrics(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def engine_steps(samples: dict[str, float]) -> int:
    return int(sum(v for k, v in samples.items() if k.startswith("llm_engine_steps_total{")))


async def abandon(url: str, conversations: list, max_tokens: int, timeout_s: float) -> float:
    """Send every conversation at once; each client gives up after ``timeout_s``. Return when the last gave up."""

    async def one(conversation: list) -> None:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            try:
                await client.post(f"{url}/v1/chat/completions",
                                  json={"messages": conversation, "max_tokens": max_tokens, "ignore_eos": True})
            except httpx.TimeoutException:
                return
            raise RuntimeError("a request finished before its client gave up; raise --max-tokens")

    await asyncio.gather(*(one(c) for c in conversations))
    return time.perf_counter()


def sigterm_drain_s(server: LLMServer, conversations: list, max_tokens: int) -> float:
    """With every conversation's request running or queued, SIGTERM the server; seconds until it exited."""

    def one(conversation: list) -> None:
        try:
            httpx.post(f"{server.url}/v1/chat/completions", timeout=600,
                       json={"messages": conversation, "max_tokens": max_tokens, "ignore_eos": True})
        except httpx.TransportError:
            pass  # the server went away, as it should

    clients = [threading.Thread(target=one, args=(c,), daemon=True) for c in conversations]
    for thread in clients:
        thread.start()
    while True:
        samples = metrics(server.url)
        if samples["llm_requests_running"] + samples["llm_requests_waiting"] >= len(conversations):
            break
        time.sleep(0.05)
    started = time.perf_counter()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=600)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    model_dir = resolve_model(args.model_shape)
    server_args = ["--dtype", args.dtype, "--quantization", "none", "--cpu-threads", str(args.cpu_threads),
                   "--max-new-tokens-cap", str(max(args.max_tokens, 512)), "--max-batch-size", str(args.clients),
                   "--prefill-chunk-tokens", str(args.prefill_chunk_tokens)]
    conversations = make_conversations(args.clients, args.prompt_words)
    with LLMServer(model_dir, server_args, args.output, name=f"abandon-{args.model_shape.replace('/', '_')}",
                   ready_timeout_s=args.ready_timeout_s) as server:
        ready_s = server.ready_s
        gave_up = asyncio.run(abandon(server.url, conversations, args.max_tokens, args.client_timeout_s))
        first = metrics(server.url)
        first_poll_s = time.perf_counter() - gave_up  # how long one /metrics answer takes here
        steps_at_disconnect, samples = engine_steps(first), first
        while samples["llm_requests_running"] or samples["llm_requests_waiting"]:
            time.sleep(0.02)
            samples = metrics(server.url)
        drained_s = time.perf_counter() - gave_up
        steps_after = engine_steps(samples) - steps_at_disconnect
        started = time.perf_counter()
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=600,
                              json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        next_request_s = time.perf_counter() - started
        statuses = {k: v for k, v in metrics(server.url).items() if k.startswith("llm_requests_total{")}
        drain_s = sigterm_drain_s(server, conversations, args.max_tokens)
    result = {
        "model_shape": args.model_shape, "dtype": args.dtype, "clients": args.clients,
        "client_timeout_s": args.client_timeout_s, "prompt_words": args.prompt_words,
        "prefill_chunk_tokens": args.prefill_chunk_tokens, "ready_s": round(ready_s, 1),
        "gauges_zero_after_last_disconnect_s": round(drained_s, 2), "first_metrics_poll_s": round(first_poll_s, 2), "engine_steps_after_last_disconnect": steps_after,
        "next_request_status": response.status_code, "next_request_s": round(next_request_s, 2),
        "requests_by_status": statuses, "sigterm_with_all_busy_exit_s": round(drain_s, 2),
        "sigterm_exit_code": server.process.returncode,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"abandon-{args.model_shape.replace('/', '_')}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
