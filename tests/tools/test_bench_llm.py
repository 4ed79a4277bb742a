"""``python -m tools.bench.llm``: its arithmetic and output, and one tiny end-to-end run (slow: starts the service)."""

from __future__ import annotations

import json
import math

import pytest

from tools.bench.llm import measure, report
from tools.bench.llm.models import weight_bytes_read_per_token


def test_latency_percentiles_are_nearest_rank_and_leave_out_missing_per_token_times():
    assert measure._percentile([4, 1, 3, 2], 0.5) == 2  # was interpolated (2.5) before tools.stats
    assert measure._percentile([1, 2, 3, 4, 5], 0.95) == 5
    assert measure._percentile([float("nan"), 3.0, 1.0], 0.95) == 3.0
    assert math.isnan(measure._percentile([float("nan")], 0.5))


def test_conversations_differ_and_have_the_asked_length():
    conversations = measure.make_conversations(3, 10)
    texts = [c[0]["content"] for c in conversations]
    assert len(set(texts)) == 3 and all(len(t.split()) == 12 for t in texts)


def test_weight_bytes_count_a_tied_head_once_and_skip_an_untied_embedding(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    all_bytes = sum(p.numel() * 4 for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert weight_bytes_read_per_token(model) == all_bytes + buffers  # tied: the head reads the embedding
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    # Untied: the head's copy is read, the embedding (one row per token) is not: the same total.
    assert weight_bytes_read_per_token(model) == all_bytes + buffers
    assert sum(p.numel() * 4 for p in model.parameters()) > all_bytes


def fake_result() -> dict:
    level = {"concurrency": 1, "requests": 2, "tokens_per_s": 9.5, "ttft_p50_s": 0.5, "ttft_p95_s": 0.6,
             "per_token_p50_s": 0.1, "per_token_p95_s": 0.12}
    return {
        "date": "2026-01-01 10:00",
        "machine": {"cpu": "Test CPU", "cpu_cores": 2, "torch": "2", "transformers": "5"},
        "settings": {"model_shape": "tiny", "dtype": "bfloat16", "cpu_threads": 1, "max_tokens": 8,
                     "prompt_tokens": 40.0},
        "bandwidth": {"best_gbps": 20.0, "median_gbps": 18.0},
        "runs": [{"quantization": "none", "baseline": {"tokens_per_s": 10.0, "decode_tokens_per_s": 11.0},
                  "levels": [level, {**level, "concurrency": 4, "tokens_per_s": 30.0}],
                  "weight_bytes_per_token": 2_000_000_000, "server_peak_rss_bytes": 2**31}],
        "scheduler_comparison": [{"concurrency": 4, "requests": 4, "ours_tokens_per_s": 30.0,
                                  "transformers_cb_tokens_per_s": 20.0}],
    }


def test_report_shows_ratio_limit_and_comparison():
    text = report.render(fake_result())
    assert "| none | 1 | 2 | 9.50 | 10.00 | 0.95x | 0.50 | 0.60 | 100 | 2.00 |" in text
    assert "| none | 4 | 2 | 30.00 | 10.00 | 3.00x |" in text
    # 20 GB/s over 2 GB per token: 10 tokens/s at most; 1 / 0.1 s = 10 tokens/s served.
    assert "| none | 2 | 20.0 | 10.00 | 11.00 | 10.00 | 100% |" in text
    assert "| 4 | 4 | 30.00 | 20.00 |" in text
    assert text.startswith("LLM service benchmark, 2026-01-01 10:00: tiny (bfloat16), Test CPU, 2 cores")


@pytest.mark.slow
def test_tiny_benchmark_runs_end_to_end(tmp_path, capsys):
    from tools.bench.llm.__main__ import main

    output = tmp_path / "bench.json"
    assert main(["--model-shape", "tiny", "--concurrency", "1,2", "--requests", "2", "--max-tokens", "4",
                 "--cpu-threads", "1", "--cache-dir", str(tmp_path / "models"), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(output.read_text())
    [run] = result["runs"]
    assert [level["concurrency"] for level in run["levels"]] == [1, 2]
    assert all(level["tokens"] == 2 * 4 for level in run["levels"])  # ignore_eos: exactly max_tokens each
    assert run["baseline"]["tokens_per_s"] > 0 and run["server_peak_rss_bytes"] > 0
    assert "| none | 2 | 2 |" in printed and f"JSON: {output}" in printed
