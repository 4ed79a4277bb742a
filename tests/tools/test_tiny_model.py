"""``python -m tools.testing.tiny_model``: the tiny random model the tests, benchmarks and demos use."""

from __future__ import annotations

from tools.testing.tiny_model import main


def test_tiny_model_command_writes_a_loadable_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert main(["--output", str(tmp_path / "tiny"), "--seed", "1"]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    assert model.config.model_type == "qwen2"
    assert sum(p.numel() for p in model.parameters()) < 500_000
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= set(tokenizer.get_vocab())
