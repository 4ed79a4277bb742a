"""The measurements of the benchmark: memory bandwidth, plain ``generate``, and load on a live server.

Every function returns plain numbers (dicts of floats) for ``report`` to print
and store; none of them prints.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from tools.stats import percentile

WORDS = (
    "tent sleeping bag stove boots jacket rope map compass mat torch filter pole gloves rain wind snow trail "
    "summit lake forest river night winter summer pack layer warm dry light heavy"
).split()


def make_conversations(count: int, words: int) -> list[list[dict[str, str]]]:
    """``count`` different one-turn chats, each a user message of about ``words`` words."""
    conversations = []
    for i in range(count):
        text = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(words))
        conversations.append([{"role": "user", "content": f"Question {i}: {text}?"}])
    return conversations


def prompt_tokens(model_dir: Path, conversations: list) -> float:
    """Mean prompt length of ``conversations`` in the model's tokens (chat template included)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)
                   ["input_ids"]) for c in conversations]
    return statistics.mean(lengths)


def measure_read_bandwidth(threads: int, gib: float = 1.0, repeats: int = 7) -> dict[str, float]:
    """GB/s of summing a float32 tensor far larger than the caches: on the GPU when there is one,
    else on the CPU with the serving thread count."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        data = torch.ones(int(gib * 2**30 / 4), dtype=torch.float32, device=device)
        data.sum()  # fault the pages in, load the kernels
        sync()
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            data.sum()
            sync()
            rates.append(data.numel() * 4 / (time.perf_counter() - started) / 1e9)
        del data
    finally:
        torch.set_num_threads(previous)
    return {"device": device, "best_gbps": max(rates), "median_gbps": statistics.median(rates)}


# --- plain transformers ---------------------------------------------------------------------------


def load_plain_model(model_dir: Path, dtype: str, quantization: str) -> tuple[Any, Any]:
    """The model as anyone would load it for ``generate`` (no prepacking), on the CPU or the GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm.config import Dtype, Quantization
    from llm.engine.loading import quantization_config

    device = "cuda" if torch.cuda.is_available() else "cpu"
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    quantized = quantization_config(Quantization(quantization), Dtype(dtype))
    if quantized is not None:
        kwargs.update(quantization_config=quantized, device_map={"": device})
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).eval()
    if quantized is None:
        model.to(device)
    return model, AutoTokenizer.from_pretrained(model_dir)


def baseline_generate(model: Any, tokenizer: Any, conversations: list, max_tokens: int) -> dict[str, Any]:
    """Plain ``model.generate``, one request after another: aggregate tokens/s, first-token time, decode rate."""
    import torch

    prompts = [
        torch.tensor([tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)
                      ["input_ids"]]).to(model.device)
        for c in conversations
    ]

    def run(ids: Any, new_tokens: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens)
        elapsed = time.perf_counter() - started
        assert out.shape[1] - ids.shape[1] == new_tokens
        return elapsed

    run(prompts[0], 2)  # warm-up
    first_token_s = [run(ids, 1) for ids in prompts[:2]]
    started = time.perf_counter()
    totals = [run(ids, max_tokens) for ids in prompts]
    wall = time.perf_counter() - started
    ttft = statistics.median(first_token_s)
    decode_s = max(statistics.median(totals) - ttft, 1e-9)
    return {
        "requests": len(prompts),
        "tokens": len(prompts) * max_tokens,
        "wall_s": wall,
        "tokens_per_s": len(prompts) * max_tokens / wall,
        "ttft_s": ttft,
        "decode_tokens_per_s": (max_tokens - 1) / decode_s,
        "prompt_tokens": statistics.mean(p.shape[1] for p in prompts),
    }


def free_model(model: Any) -> None:
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the service ----------------------------------------------------------------------------------


def cuda_peak_bytes(url: str) -> int:
    """The service's peak CUDA memory (its ``llm_cuda_memory_peak_bytes`` gauge; 0 on a CPU host)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("llm_cuda_memory_peak_bytes "):
            return int(float(line.split()[1]))
    return 0


async def _one_request(client: httpx.AsyncClient, conversation: list, max_tokens: int) -> dict[str, float]:
    body = {"messages": conversation, "max_tokens": max_tokens, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = last = None
    usage = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[len("data: "):])
            if chunk.get("usage"):
                usage = chunk["usage"]
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content") is not None:
                now = time.perf_counter()
                if chunk["choices"][0]["delta"].get("role") is None:
                    first = first or now
                    last = now
    tokens = usage["completion_tokens"]
    end = last or time.perf_counter()
    first = first or end
    return {
        "tokens": tokens,
        "ttft_s": first - started,
        "per_token_s": (end - first) / (tokens - 1) if tokens > 1 else float("nan"),
        "latency_s": end - started,
    }


async def _load(url: str, conversations: list, concurrency: int, max_tokens: int) -> dict[str, Any]:
    queue: asyncio.Queue = asyncio.Queue()
    for conversation in conversations:
        queue.put_nowait(conversation)
    results: list[dict[str, float]] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                results.append(await _one_request(client, queue.get_nowait(), max_tokens))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    tokens = sum(r["tokens"] for r in results)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "tokens": tokens,
        "wall_s": wall,
        "tokens_per_s": tokens / wall,
        "ttft_p50_s": _percentile([r["ttft_s"] for r in results], 0.5),
        "ttft_p95_s": _percentile([r["ttft_s"] for r in results], 0.95),
        "per_token_p50_s": _percentile([r["per_token_s"] for r in results], 0.5),
        "per_token_p95_s": _percentile([r["per_token_s"] for r in results], 0.95),
    }


def _percentile(values: list[float], q: float) -> float:
    """Nearest rank over the measured values (a one-token reply has no per-token time: NaN, left out)."""
    measured = [v for v in values if not math.isnan(v)]
    return percentile(measured, q) if measured else math.nan


def run_load(url: str, conversations: list, concurrency: int, max_tokens: int) -> dict[str, Any]:
    """``len(conversations)`` streamed requests with ``concurrency`` clients in flight: throughput and latency."""
    return asyncio.run(_load(url, conversations, concurrency, max_tokens))


# --- scheduler comparison -------------------------------------------------------------------------


def compare_schedulers(
    model_dir: Path, dtype: str, threads: int, conversations: list, concurrencies: list[int], max_tokens: int,
    rounds: int = 2,
) -> list[dict[str, Any]]:
    """Greedy throughput in-process: this service's scheduler vs transformers' continuous-batching manager.

    Same model weights, same prompts, no HTTP, no prepacking, plain greedy decoding
    (the manager drops processors it cannot batch, such as the repetition penalty).
    The two alternate ``rounds`` times per concurrency and each keeps its best round,
    so a busy neighbour on a shared machine hurts both alike.
    """
    import torch
    from transformers import GenerationConfig

    from llm.config import ServiceConfig
    from llm.engine.transformers_engine import TransformersEngine
    from llm.protocol import ChatCompletionRequest, ChatMessage

    logging.getLogger("ContinuousBatchingLogger").setLevel(logging.WARNING)
    config = ServiceConfig(model=str(model_dir), dtype=dtype, cpu_prepack="off", cpu_threads=threads,
                           max_new_tokens_cap=max(max_tokens, 256), max_batch_size=max(concurrencies),
                           max_queue_size=max(len(conversations), *concurrencies), request_timeout_s=0)
    engine = TransformersEngine(config.resolve(torch.cuda.is_available(), True))
    engine.load()
    engine.warm_up()
    model = engine.model
    greedy = GenerationConfig(do_sample=False, max_new_tokens=max_tokens,
                              eos_token_id=model.generation_config.eos_token_id,
                              pad_token_id=model.generation_config.pad_token_id)
    model.generation_config = greedy
    messages = [tuple(ChatMessage(**m) for m in c) for c in conversations]
    rows = []
    try:
        for concurrency in concurrencies:
            count = max(len(messages), concurrency)
            chosen = (messages * concurrency)[:count]
            prompts = [engine.tokenize_prompt(m) for m in chosen]
            requests = [ChatCompletionRequest(messages=m, max_tokens=max_tokens, temperature=0.0) for m in chosen]
            engine.scheduler.max_batch_size = concurrency
            manager = _warm_manager(model, greedy, prompts, concurrency, max_tokens)
            ours, theirs = [], []
            try:
                for _ in range(rounds):
                    ours.append(_run_ours(engine, requests))
                    theirs.append(_run_theirs(manager, prompts, max_tokens))
            finally:
                manager.stop(block=True, timeout=30)
                manager.destroy()
            rows.append({
                "concurrency": concurrency,
                "requests": count,
                "ours_tokens_per_s": max(tokens / seconds for tokens, seconds in ours),
                "transformers_cb_tokens_per_s": max(tokens / seconds for tokens, seconds in theirs),
                "rounds": {"ours": ours, "transformers_cb": theirs},
            })
    finally:
        engine.close()
    return rows


def _run_ours(engine: Any, requests: list) -> tuple[int, float]:
    async def together() -> list:
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    started = time.perf_counter()
    completions = asyncio.run(together())
    return sum(c.completion_tokens for c in completions), time.perf_counter() - started


def _warm_manager(model: Any, generation_config: Any, prompts: list[list[int]], concurrency: int,
                  max_tokens: int) -> Any:
    """transformers' manager, warmed up and started, its paged cache sized for these requests
    (left to itself it sizes the cache from free memory, which on a CPU host is most of the RAM)."""
    import math

    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    longest = max(len(p) for p in prompts) + max_tokens
    page = 64
    cb_config = ContinuousBatchingConfig(
        max_requests_per_batch=concurrency, allow_block_sharing=False, page_size=page,
        num_blocks=concurrency * math.ceil(longest / page) + 4, max_batch_tokens=max(longest * concurrency, 512),
    )
    manager = model.init_continuous_batching(generation_config=generation_config, continuous_batching_config=cb_config)
    manager.warmup()
    manager.start()
    return manager


def _run_theirs(manager: Any, prompts: list[list[int]], max_tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    ids = manager.add_requests(inputs=prompts, max_new_tokens=max_tokens)
    tokens = finished = 0
    while finished < len(ids):
        result = manager.get_result(timeout=120)
        if result is None:
            raise RuntimeError("transformers' continuous batching stopped without finishing")
        if result.is_finished():
            finished += 1
            tokens += len(result.generated_tokens)
    return tokens, time.perf_counter() - started
