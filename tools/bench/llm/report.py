"""The benchmark's output: markdown tables for people, one JSON file for machines."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

GIB = 2**30


def machine() -> dict[str, Any]:
    """What ran the benchmark, for the header of the table."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def render(result: dict[str, Any]) -> str:
    """Markdown: a header line, the throughput/latency table, and the bandwidth table."""
    s = result["settings"]
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cpu_cores']} cores"
    lines = [
        f"LLM service benchmark, {result['date']}: {s['model_shape']} ({s['dtype']}), {where}, "
        f"{s['cpu_threads']} threads; {s['max_tokens']} tokens per request, "
        f"~{s['prompt_tokens']:.0f}-token prompts; torch {m['torch']}, transformers {m['transformers']}"
        + (f"; load average {s['load']:.2f} at the start." if s.get("load") is not None else "."),
        "",
        "| quantization | concurrency | requests | tokens/s | plain generate tokens/s | ratio | "
        "TTFT p50 (s) | TTFT p95 (s) | per-token p50 (ms) | peak RSS (GiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        base = run["baseline"]["tokens_per_s"] if run.get("baseline") else None
        rss = run.get("server_peak_rss_bytes")
        for level in run["levels"]:
            ratio = _f(level["tokens_per_s"] / base) + "x" if base else "–"
            lines.append(
                f"| {run['quantization']} | {level['concurrency']} | {level['requests']} | "
                f"{_f(level['tokens_per_s'])} | {_f(base)} | {ratio} | "
                f"{_f(level['ttft_p50_s'])} | {_f(level['ttft_p95_s'])} | {_f(level['per_token_p50_s'] * 1000, 0)} | "
                f"{_f(rss / GIB if rss else None)} |"
            )
    lines += [
        "",
        "Read bandwidth: best of repeated sums of a 1 GiB tensor, measured just before and after the "
        "concurrency-1 level and averaged; limit = bandwidth / weight bytes read per token.",
        "",
        "| quantization | weights read per token (GB) | read bandwidth (GB/s) | limit tokens/s | "
        "plain generate decode tokens/s | service decode tokens/s (concurrency 1) | service / limit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        bandwidth = run.get("bandwidth_around_single_stream_gbps") or result["bandwidth"]["best_gbps"]
        gb = run["weight_bytes_per_token"] / 1e9
        limit = bandwidth / gb
        single = next((lv for lv in run["levels"] if lv["concurrency"] == 1), None)
        served = 1 / single["per_token_p50_s"] if single and single["per_token_p50_s"] > 0 else None
        lines.append(
            f"| {run['quantization']} | {gb:.3g} | {_f(bandwidth, 1)} | {_f(limit)} | "
            f"{_f(run['baseline']['decode_tokens_per_s'] if run.get('baseline') else None)} | {_f(served)} | "
            f"{_f(100 * served / limit, 0) + '%' if served else '–'} |"
        )
    if any(run.get("engine") for run in result["runs"]):
        lines += ["", *render_engines(result)]
    if result.get("gpu_memory"):
        lines += ["", "GPU memory peak: " + ", ".join(
            f"{q} {_f(b / GIB)} GiB" for q, b in result["gpu_memory"].items())]
    if result.get("scheduler_comparison"):
        lines += [
            "",
            "| concurrency | requests | this service's scheduler tokens/s "
            "| transformers continuous batching tokens/s |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for row in result["scheduler_comparison"]:
            lines.append(
                f"| {row['concurrency']} | {row['requests']} | {_f(row['ours_tokens_per_s'])} | "
                f"{_f(row['transformers_cb_tokens_per_s'])} |"
            )
    return "\n".join(lines)


def render_engines(result: dict[str, Any]) -> list[str]:
    """The engines side by side: decode against the bandwidth limit, TTFT cold and with a prefix hit,
    aggregate throughput, memory, conversion time."""
    runs = result["runs"]
    prefix = next((r["prefix"] for r in runs if r.get("prefix")), None)
    concurrencies = [c for c in result["settings"]["concurrency"] if c > 1]
    prompt = f"{prefix['prompt_tokens']}-token prompt" if prefix else "long prompt"
    cached = f"first {prefix['system_tokens']} seen" if prefix else "prefix seen"
    lines = [
        "| engine | weights | read/token (GB) | limit tokens/s | decode tokens/s (1 stream) | of limit | "
        f"TTFT {prompt}, cold (s) | TTFT, {cached} (s) | "
        + "".join(f"tokens/s at {c} | " for c in concurrencies)
        + "peak RSS (GiB) | conversion (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | " + "---: | " * len(concurrencies) + "---: | ---: |",
    ]
    for run in runs:
        bandwidth = run.get("bandwidth_around_single_stream_gbps") or result["bandwidth"]["best_gbps"]
        gb = run["weight_bytes_per_token"] / 1e9
        limit = bandwidth / gb
        single = next((lv for lv in run["levels"] if lv["concurrency"] == 1), None)
        served = 1 / single["per_token_p50_s"] if single and single["per_token_p50_s"] > 0 else None
        by_concurrency = {lv["concurrency"]: lv["tokens_per_s"] for lv in run["levels"]}
        conversion = run.get("conversion")
        converted = (f"{_f(conversion['convert_s'], 0)} + {_f(conversion['quantize_s'], 0)}"
                     if conversion else "–")
        rss = run.get("server_peak_rss_bytes")
        p = run.get("prefix") or {}
        lines.append(
            f"| {run.get('engine', 'transformers')} | {run.get('format', run['quantization'])} | {gb:.3g} | "
            f"{_f(limit)} | {_f(served)} | {_f(100 * served / limit, 0) + '%' if served else '–'} | "
            f"{_f(p.get('ttft_cold_s'))} | {_f(p.get('ttft_prefix_hit_s'))} | "
            + "".join(f"{_f(by_concurrency.get(c))} | " for c in concurrencies)
            + f"{_f(rss / GIB if rss else None)} | {converted} |"
        )
    lines += ["", "Conversion: HF checkpoint -> 16-bit GGUF + quantization, seconds (cached afterwards)."]
    return lines


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
