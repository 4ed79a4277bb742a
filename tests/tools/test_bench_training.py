"""``python -m tools.bench.training``: each method measured on the tiny model, and its table (slow: trains)."""

from __future__ import annotations

import pytest

from tools.bench import training as bench

pytestmark = pytest.mark.slow


@pytest.fixture
def one_torch_thread():
    """The tiny model's tensors are too small to split: a second thread only waits on a busy 2-core runner."""
    import torch

    threads = torch.get_num_threads()
    yield 1
    torch.set_num_threads(threads)  # the worker sets the count for its (normally its own) process


def test_the_benchmark_measures_every_method(tiny_model_dir, one_torch_thread):
    results = [bench.worker(method, str(tiny_model_dir), steps=3, seq_len=64, batch_size=2, threads=one_torch_thread)
               for method in bench.METHODS]
    assert [r["method"] for r in results] == list(bench.METHODS)
    assert all(r["steps_measured"] == 2 and r["tokens_per_second"] > 0 and r["peak_memory_gib"] > 0
               for r in results)
    lora, qlora, full = results
    assert lora["trainable_parameters"] == qlora["trainable_parameters"] < full["trainable_parameters"]
    assert "| qlora-nf4 |" in bench.render(results, {"shape": "tiny", "seq_len": 64, "batch_size": 2, "steps": 3})


def test_the_benchmark_measures_dpo_and_orpo_with_dpos_own_trainer(tiny_model_dir, one_torch_thread):
    results = [bench.worker(method, str(tiny_model_dir), steps=3, seq_len=96, batch_size=2, threads=one_torch_thread)
               for method in ("dpo-lora", "orpo-lora")]
    assert all(r["steps_measured"] == 2 and r["tokens_per_second"] > 0 and r["peak_memory_gib"] > 0
               for r in results)
    assert results[0]["trainable_parameters"] == results[1]["trainable_parameters"] > 0
    pairs = bench.random_pairs(str(tiny_model_dir), 2, 96)
    assert len(pairs) == 2 and pairs[0]["chosen"] != pairs[0]["rejected"]
    assert "| orpo-lora |" in bench.render(results, {"shape": "tiny", "seq_len": 96, "batch_size": 2, "steps": 3})


def test_the_large_shape_is_the_llm_benchmarks_qwen_shape():
    from tools.bench.llm.models import SHAPES

    assert SHAPES["qwen2.5-1.5b"]["hidden_size"] == 1536 and SHAPES["qwen2.5-1.5b"]["num_hidden_layers"] == 28
    assert bench.SHAPES is SHAPES
