"""Benchmark the LLM service against plain ``model.generate`` and the memory-bandwidth limit.

    python -m tools.bench.llm                                   # Qwen2.5-1.5B shape, random weights
    python -m tools.bench.llm --model-shape tiny --concurrency 1,4,8,16 --requests 32 --max-tokens 64
    python -m tools.bench.llm --model-shape qwen2.5-1.5b --dtype bfloat16 --concurrency 1,4 \\
        --requests 4 --max-tokens 16 --quantization none,int8,nf4
    python -m tools.bench.llm --model-shape models/my-finetune  # any model directory
    python -m tools.bench.llm --engine transformers,llamacpp --gguf-quant q4_k_m,q8_0 \
        --concurrency 1,4,8 --requests 8 --max-tokens 32   # the engines side by side

For each engine and weight format it measures, in one run: (transformers) plain
``generate`` one request after another (the baseline); (llamacpp) the GGUF
conversion, cached; then the service started on loopback under
``--concurrency`` streaming clients, and the time to first token of a
``--prefix-tokens``-token system prompt plus a question, cold and with the
system prompt in the prefix cache; then it prints markdown tables and writes
JSON (``--output``). ``--compare-transformers-cb`` adds transformers' own
continuous-batching manager against this service's scheduler, in-process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from tools.bench.llm import engines, measure, report
from tools.bench.llm.models import DEFAULT_CACHE, resolve_model, weight_bytes_read_per_token
from tools.procs import LLMServer

logger = logging.getLogger("tools.bench.llm")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in ("none", "int8", "nf4"):
            raise argparse.ArgumentTypeError(f"{name!r} is not one of none, int8, nf4")
    return names


def _engines(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in ("transformers", "llamacpp"):
            raise argparse.ArgumentTypeError(f"{name!r} is not one of transformers, llamacpp")
    return names


def _quants(text: str) -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in ("q4_k_m", "q8_0", "bf16", "f16"):
            raise argparse.ArgumentTypeError(f"{name!r} is not one of q4_k_m, q8_0, bf16, f16")
    return names


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-shape", default="qwen2.5-1.5b",
                        help="tiny, qwen2.5-1.5b (random weights, built once into --cache-dir), or a model directory.")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"],
                        help="Weight dtype for the baseline and the service. Default: bfloat16.")
    parser.add_argument("--quantization", type=_names, default=["none"],
                        help="Comma-separated list of none, int8, nf4; one run each. Default: none.")
    parser.add_argument("--engine", type=_engines, default=["transformers"],
                        help="Comma-separated engines to measure side by side: transformers (one run per "
                             "--quantization), llamacpp (one run per --gguf-quant). Default: transformers.")
    parser.add_argument("--gguf-quant", type=_quants, default=["q4_k_m", "q8_0"],
                        help="GGUF formats for --engine llamacpp. Default: q4_k_m,q8_0.")
    parser.add_argument("--gguf-cache", type=Path, default=Path("models/gguf"),
                        help="Where converted GGUF files are kept. Default: models/gguf.")
    parser.add_argument("--prefix-tokens", type=int, default=600,
                        help="System-prompt tokens of the prefix-cache probe (0: skip it). Default: 600.")
    parser.add_argument("--prefix-question-tokens", type=int, default=50,
                        help="Question tokens after that system prompt. Default: 50.")
    parser.add_argument("--prefix-repeats", type=int, default=2,
                        help="Cold and cached requests each of the prefix probe (the median is reported). Default: 2.")
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


def run_engine(args: argparse.Namespace, model_dir: Path, engine: str, fmt: str, conversations: list,
               threads: int, log_dir: Path, prefix: dict | None) -> dict:
    """One engine in one weight format: baseline or conversion, the load levels, the prefix probe."""
    label = fmt if engine == "transformers" else f"llamacpp {fmt}"
    baseline = conversion = None
    server_args = ["--engine", engine, "--cpu-threads", str(threads)]
    if engine == "transformers":
        baseline_conversations = conversations[: max(1, min(args.baseline_requests, len(conversations)))]
        logger.info("[%s] plain generate baseline: %d requests x %d tokens", label, len(baseline_conversations),
                    args.max_tokens)
        model, tokenizer = measure.load_plain_model(model_dir, args.dtype, fmt)
        weight_bytes = weight_bytes_read_per_token(model)
        baseline = measure.baseline_generate(model, tokenizer, baseline_conversations, args.max_tokens)
        logger.info("[%s] baseline %.2f tokens/s (decode %.2f tokens/s)", label, baseline["tokens_per_s"],
                    baseline["decode_tokens_per_s"])
        measure.free_model(model)
        server_args += ["--dtype", args.dtype, "--quantization", fmt]
    else:
        from llm.gguf.cache import ensure_gguf

        gguf = ensure_gguf(model_dir, fmt, root=args.gguf_cache, threads=threads)
        conversion = {**engines.conversion_seconds(gguf.path), "file_bytes": gguf.path.stat().st_size,
                      "reused": gguf.reused}
        logger.info("[%s] GGUF %s: convert %.0fs, quantize %.0fs (%s)", label, gguf.path, conversion["convert_s"],
                    conversion["quantize_s"], "cached" if gguf.reused else "now")
        weight_bytes = engines.gguf_bytes_read_per_token(gguf.path)
        server_args += ["--gguf-quant", fmt, "--gguf-cache", str(args.gguf_cache)]
    if prefix is not None:
        server_args += ["--warm-prompt", str(prefix["file"])]
    server_args += [
        "--max-batch-size", str(max(args.concurrency)), "--max-queue-size", str(max(args.requests, 64)),
        "--max-new-tokens-cap", str(max(args.max_tokens, 256)), "--request-timeout-s", "0",
        "--log-level", "info", *args.server_arg,
    ]
    levels = []
    prefix_result = None
    log_name = label.replace(" ", "-")
    with LLMServer(model_dir, server_args, log_dir, name=f"server-{log_name}",
                   ready_timeout_s=args.ready_timeout_s) as server:
        ready_s = server.ready_s
        logger.info("[%s] service ready in %.0fs", label, ready_s)
        if prefix is not None:
            prefix_result = engines.prefix_ttft(server.url, prefix, args.prefix_repeats)
            prefix_result["hit_tokens_total"] = engines.prefix_hit_tokens(server.url)
            logger.info("[%s] %d-token prompt: TTFT cold %.2fs, with its %d-token system prompt cached %.2fs",
                        label, prefix_result["prompt_tokens"], prefix_result["ttft_cold_s"],
                        prefix_result["system_tokens"], prefix_result["ttft_prefix_hit_s"])
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
            logger.info("[%s] concurrency %d: %.2f tokens/s, TTFT p50 %.2fs", label, concurrency,
                        level["tokens_per_s"], level["ttft_p50_s"])
            levels.append(level)
        peak_rss = server.peak_rss_bytes()
        cuda_peak = measure.cuda_peak_bytes(server.url)
    return {
        "quantization": label,
        "engine": engine,
        "format": fmt if engine == "llamacpp" else (args.dtype if fmt == "none" else fmt),
        "baseline": baseline,
        "conversion": conversion,
        "prefix": prefix_result,
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
    prefix = None
    if args.prefix_tokens:
        prefix = engines.prefix_prompts(model_dir, args.prefix_tokens, args.prefix_question_tokens)
        prefix["file"] = log_dir / "warm-prompt.txt"
        prefix["file"].parent.mkdir(parents=True, exist_ok=True)
        prefix["file"].write_text(prefix["warm"])
    plan = [(engine, fmt) for engine in args.engine
            for fmt in (args.quantization if engine == "transformers" else args.gguf_quant)]
    runs = [run_engine(args, model_dir, engine, fmt, conversations, threads, log_dir, prefix) for engine, fmt in plan]
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
            "baseline_requests": next((r["baseline"]["requests"] for r in runs if r["baseline"]), None),
            "concurrency": args.concurrency,
            "cpu_threads": threads,
            "prompt_tokens": measure.prompt_tokens(model_dir, conversations),
            "load": os.getloadavg()[0],
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
