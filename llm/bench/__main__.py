"""Benchmark the LLM service against plain ``model.generate`` and the memory-bandwidth limit.

    python -m llm.bench                                     # Qwen2.5-1.5B shape, random weights
    python -m llm.bench --model-shape tiny --concurrency 1,4,8,16 --requests 32 --max-tokens 64
    python -m llm.bench --model-shape qwen2.5-1.5b --dtype bfloat16 --concurrency 1,4 \\
        --requests 4 --max-tokens 16 --quantization none,int8,nf4
    python -m llm.bench --model-shape models/my-finetune   # any model directory

For each quantization it measures, in one run: plain ``generate`` one request
after another (the baseline), then the service started on loopback under
``--concurrency`` streaming clients; then it prints a markdown table and writes
JSON (``--output``). ``--compare-transformers-cb`` adds transformers' own
continuous-batching manager against this service's scheduler, in-process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import socket
import sys
from pathlib import Path
from typing import Sequence

from llm.bench import measure, report
from llm.bench.models import DEFAULT_CACHE, resolve_model, weight_bytes_read_per_token

logger = logging.getLogger("llm.bench")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in ("none", "int8", "nf4"):
            raise argparse.ArgumentTypeError(f"{name!r} is not one of none, int8, nf4")
    return names


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llm.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-shape", default="qwen2.5-1.5b",
                        help="tiny, qwen2.5-1.5b (random weights, built once into --cache-dir), or a model directory.")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"],
                        help="Weight dtype for the baseline and the service. Default: bfloat16.")
    parser.add_argument("--quantization", type=_names, default=["none"],
                        help="Comma-separated list of none, int8, nf4; one run each. Default: none.")
    parser.add_argument("--concurrency", type=_ints, default=[1, 4, 8, 16],
                        help="Comma-separated client concurrencies. Default: 1,4,8,16.")
    parser.add_argument("--requests", type=int, default=16,
                        help="Requests per concurrency level (at least the concurrency); also the baseline's. "
                             "Default: 16.")
    parser.add_argument("--baseline-requests", type=int, default=4,
                        help="Requests for the sequential plain-generate baseline (a rate: a few suffice). Default: 4.")
    parser.add_argument("--max-tokens", type=int, default=64, help="Tokens generated per request. Default: 64.")
    parser.add_argument("--prompt-words", type=int, default=40, help="Words in each prompt. Default: 40.")
    parser.add_argument("--cpu-threads", type=int, default=0,
                        help="Torch threads for baseline and service; 0: PyTorch's default. Default: 0.")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="Extra `llm serve` argument (repeatable), e.g. --server-arg=--cpu-prepack=off.")
    parser.add_argument("--compare-transformers-cb", action="store_true",
                        help="Also compare this service's scheduler with transformers' continuous batching.")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="Where random models are built.")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file to write. Default: var/bench/llm-<shape>-<timestamp>.json.")
    parser.add_argument("--ready-timeout-s", type=float, default=900, help="Longest wait for the service to load.")
    return parser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_quantization(args: argparse.Namespace, model_dir: Path, quantization: str, conversations: list,
                     threads: int, log_dir: Path) -> dict:
    baseline_conversations = conversations[: max(1, min(args.baseline_requests, len(conversations)))]
    logger.info("[%s] plain generate baseline: %d requests x %d tokens", quantization, len(baseline_conversations),
                args.max_tokens)
    model, tokenizer = measure.load_plain_model(model_dir, args.dtype, quantization)
    weight_bytes = weight_bytes_read_per_token(model)
    baseline = measure.baseline_generate(model, tokenizer, baseline_conversations, args.max_tokens)
    logger.info("[%s] baseline %.2f tokens/s (decode %.2f tokens/s)", quantization, baseline["tokens_per_s"],
                baseline["decode_tokens_per_s"])
    measure.free_model(model)

    server_args = [
        "--dtype", args.dtype, "--quantization", quantization, "--cpu-threads", str(threads),
        "--max-batch-size", str(max(args.concurrency)), "--max-queue-size", str(max(args.requests, 64)),
        "--max-new-tokens-cap", str(max(args.max_tokens, 256)), "--request-timeout-s", "0",
        "--log-level", "info", *args.server_arg,
    ]
    port = free_port()
    levels = []
    with measure.ServerProcess(model_dir, port, server_args, log_dir / f"server-{quantization}.log") as server:
        ready_s = server.wait_ready(args.ready_timeout_s)
        logger.info("[%s] service ready in %.0fs", quantization, ready_s)
        bandwidth_around_single = []
        for concurrency in args.concurrency:
            count = max(args.requests, concurrency)
            batch = (conversations * (count // len(conversations) + 1))[:count]
            single = concurrency == 1
            if single:  # the limit, measured right around the single-stream level (shared machines drift)
                bandwidth_around_single.append(measure.measure_read_bandwidth(threads, repeats=5))
            level = measure.run_load(server.url, batch, concurrency, args.max_tokens)
            if single:
                bandwidth_around_single.append(measure.measure_read_bandwidth(threads, repeats=5))
            logger.info("[%s] concurrency %d: %.2f tokens/s (%.2fx plain generate), TTFT p50 %.2fs",
                        quantization, concurrency, level["tokens_per_s"],
                        level["tokens_per_s"] / baseline["tokens_per_s"], level["ttft_p50_s"])
            levels.append(level)
        peak_rss = server.peak_rss_bytes()
        cuda_peak = server.cuda_peak_bytes()
    return {
        "quantization": quantization,
        "baseline": baseline,
        "levels": levels,
        "weight_bytes_per_token": weight_bytes,
        "bandwidth_around_single_stream_gbps": (
            sum(b["best_gbps"] for b in bandwidth_around_single) / len(bandwidth_around_single)
            if bandwidth_around_single else None
        ),
        "server_ready_s": ready_s,
        "server_peak_rss_bytes": peak_rss,
        "server_cuda_peak_bytes": cuda_peak,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import torch

    threads = args.cpu_threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    if args.requests < 1 or args.max_tokens < 2:
        raise SystemExit("error: --requests must be 1 or more and --max-tokens 2 or more.")
    started = dt.datetime.now()
    model_dir = resolve_model(args.model_shape, args.cache_dir)
    conversations = measure.make_conversations(args.requests, args.prompt_words)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    shape_name = Path(args.model_shape).name
    output = args.output or Path("var/bench") / f"llm-{shape_name}-{stamp}.json"
    log_dir = output.parent / f"logs-{stamp}"

    bandwidth = measure.measure_read_bandwidth(threads)
    logger.info("read bandwidth with %d threads: %.1f GB/s (median %.1f)", threads, bandwidth["best_gbps"],
                bandwidth["median_gbps"])
    runs = [run_quantization(args, model_dir, q, conversations, threads, log_dir) for q in args.quantization]
    comparison = None
    if args.compare_transformers_cb:
        logger.info("comparing schedulers in-process (greedy, no prepacking)")
        comparison = measure.compare_schedulers(model_dir, args.dtype, threads, conversations, args.concurrency,
                                                args.max_tokens)
    result = {
        "date": started.strftime("%Y-%m-%d %H:%M"),
        "machine": report.machine(),
        "settings": {
            "model_shape": args.model_shape,
            "model_dir": str(model_dir),
            "dtype": args.dtype,
            "max_tokens": args.max_tokens,
            "requests": args.requests,
            "baseline_requests": runs[0]["baseline"]["requests"],
            "concurrency": args.concurrency,
            "cpu_threads": threads,
            "prompt_tokens": runs[0]["baseline"]["prompt_tokens"],
            "server_args": args.server_arg,
        },
        "bandwidth": bandwidth,
        "runs": runs,
        "gpu_memory": {r["quantization"]: r["server_cuda_peak_bytes"] for r in runs if r["server_cuda_peak_bytes"]},
        "scheduler_comparison": comparison,
    }
    report.write_json(result, output)
    print(report.render(result))
    print(f"\nJSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
