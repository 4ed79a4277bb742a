"""Weight formats on the CPU: bitsandbytes int8/nf4 load and serve; oneDNN prepacking keeps the outputs."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.config import Quantization
from llm.engine.loading import quantization_config
from llm.protocol import ChatCompletionRequest, ChatMessage, FinishReason
from tests.llm.conftest import make_engine

QUESTION = (ChatMessage("user", "Is this tent waterproof?"),)

pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (dev extra)")


def complete(engine, **sampling):
    return asyncio.run(engine.generate(ChatCompletionRequest(messages=QUESTION, **sampling)))


@pytest.mark.parametrize(
    ("quantization", "layer_type", "weight_dtype"),
    [(Quantization.INT8, "Linear8bitLt", torch.int8), (Quantization.NF4, "Linear4bit", torch.uint8)],
)
def test_quantized_tiny_model_loads_and_serves_on_the_cpu(tiny_model_dir, quantization, layer_type, weight_dtype):
    engine = make_engine(tiny_model_dir, quantization=quantization, dtype="bfloat16")
    try:
        layer = engine.model.model.layers[0].mlp.up_proj
        completion = complete(engine, max_tokens=6, temperature=0)
        streamed = complete(engine, max_tokens=6, temperature=1.0, seed=4)
        again = complete(engine, max_tokens=6, temperature=1.0, seed=4)
    finally:
        engine.close()
    assert type(layer).__name__ == layer_type
    assert layer.weight.dtype == weight_dtype
    assert completion.completion_tokens == 6 and completion.finish_reason is FinishReason.LENGTH
    assert completion.text.strip()
    assert streamed == again


def test_quantization_config_follows_the_choice():
    assert quantization_config(Quantization.NONE, "bfloat16") is None
    int8 = quantization_config(Quantization.INT8, _dtype("bfloat16"))
    nf4 = quantization_config(Quantization.NF4, _dtype("bfloat16"))
    assert int8.load_in_8bit and not int8.load_in_4bit
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16


def _dtype(name: str):
    from llm.config import Dtype

    return Dtype(name)


def test_prepacking_on_a_cpu_that_cannot_is_a_clear_load_error_and_possible_packing_works(tiny_model_dir):
    from llm.engine.cpu_kernels import prepack_supported
    from llm.errors import ModelLoadError

    reason = prepack_supported()
    if reason is None:  # this CPU packs: the layers really pack (the test below compares outputs)
        weight = torch.randn(32, 16, dtype=torch.bfloat16)
        assert torch.ops.mkldnn._reorder_linear_weight(weight, None) is not None
        return
    with pytest.raises(ModelLoadError) as caught:
        make_engine(tiny_model_dir, dtype="bfloat16", cpu_prepack="on")
    assert "--cpu-prepack on is not possible" in str(caught.value) and "--cpu-prepack off" in str(caught.value)


def test_prepacked_bfloat16_model_generates_what_the_plain_one_does(tiny_model_dir):
    from llm.engine.cpu_kernels import PackedLinear, prepack_supported

    if reason := prepack_supported():
        pytest.skip(f"oneDNN prepacking is unavailable: {reason}")
    plain = make_engine(tiny_model_dir, dtype="bfloat16", cpu_prepack="off")
    packed = make_engine(tiny_model_dir, dtype="bfloat16", cpu_prepack="on")
    try:
        ids = torch.tensor([plain.tokenize_prompt(QUESTION)])
        with torch.inference_mode():
            expected = plain.model(ids).logits.float()
            actual = packed.model(ids).logits.float()
        packed_layers = [m for m in packed.model.modules() if isinstance(m, PackedLinear)]
        replies = complete(plain, max_tokens=8, temperature=0), complete(packed, max_tokens=8, temperature=0)
    finally:
        plain.close()
        packed.close()
    assert len(packed_layers) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the LM head
    assert not any(isinstance(m, torch.nn.Linear) for m in packed.model.modules())
    torch.testing.assert_close(actual, expected, atol=0.05, rtol=0.05)
    assert replies[0].completion_tokens == replies[1].completion_tokens == 8
