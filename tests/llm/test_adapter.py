"""--adapter: a PEFT LoRA adapter served on top of the base model, unmerged."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import torch

from llm.errors import ModelLoadError
from llm.protocol import ChatCompletionRequest, ChatMessage
from tests.llm.conftest import make_engine

pytest.importorskip("peft", reason="peft is not installed (train extra)")

QUESTION = (ChatMessage("user", "Which stove works in deep cold?"),)


@pytest.fixture(scope="module")
def adapter_and_merged(tiny_model_dir, tmp_path_factory):
    """A random (untrained) LoRA adapter for the tiny model, and the same adapter merged into a copy."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("lora")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                        init_lora_weights=False)  # B random too, so the adapter changes the outputs
    torch.manual_seed(3)
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(root / "adapter")
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(root / "merged")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, root / "merged" / name)
    return root / "adapter", root / "merged"


def replies(engine) -> list[str]:
    async def run():
        greedy = await engine.generate(ChatCompletionRequest(messages=QUESTION, max_tokens=12, temperature=0))
        sampled = await engine.generate(
            ChatCompletionRequest(messages=QUESTION, max_tokens=12, temperature=1.0, seed=11)
        )
        return [greedy.text, sampled.text]

    return asyncio.run(run())


def test_adapter_changes_the_replies_and_equals_the_merged_model(tiny_model_dir, adapter_and_merged, transformers_engine):
    engine = transformers_engine
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    adapter_dir, merged_dir = adapter_and_merged
    adapted = make_engine(tiny_model_dir, adapter=str(adapter_dir))
    merged = make_engine(merged_dir)
    try:
        ids = torch.tensor([engine.tokenize_prompt(QUESTION)])
        with torch.inference_mode():
            base_logits = engine.model(ids).logits
            adapted_logits = adapted.model(ids).logits
            merged_logits = merged.model(ids).logits
        lora_layers = [m for m in adapted.model.modules() if isinstance(m, LoraLayer)]
        base_replies, adapted_replies, merged_replies = replies(engine), replies(adapted), replies(merged)
    finally:
        adapted.close()
        merged.close()
    assert isinstance(adapted.model, PeftModel)
    assert lora_layers and not any(layer.merged for layer in lora_layers)  # served unmerged
    assert not torch.allclose(adapted_logits, base_logits, atol=1e-3)
    torch.testing.assert_close(adapted_logits, merged_logits, atol=1e-4, rtol=1e-4)
    assert adapted_replies != base_replies
    assert adapted_replies == merged_replies


def test_adapter_for_another_base_fails_with_a_sentence(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    other = Qwen2ForCausalLM(Qwen2Config(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, num_key_value_heads=1))
    get_peft_model(other, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(tmp_path / "other")
    with pytest.raises(ModelLoadError) as error:
        make_engine(tiny_model_dir, adapter=str(tmp_path / "other"))
    message = str(error.value)
    assert message.startswith(f"Could not load adapter '{tmp_path / 'other'}' onto the base model:")
    assert message.endswith("Check that it was trained on this base model (its adapter_config.json names the base).")
