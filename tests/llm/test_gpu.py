"""CUDA-only paths, for a GPU host (`pytest -m gpu`); conftest skips them, with the reason, elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from llm.config import Device, Dtype, Prepack, Quantization, ServiceConfig
from llm.protocol import ChatCompletionRequest, ChatMessage, FinishReason

pytestmark = pytest.mark.gpu

QUESTION = (ChatMessage("user", "Which sleeping bag keeps me warm on a cold night?"),)


def gpu_engine(model_dir, **overrides):
    from llm.engine.transformers_engine import TransformersEngine

    config = ServiceConfig(model=str(model_dir), max_new_tokens_cap=64, **overrides).resolve(
        cuda_available=True, bf16_supported=True
    )
    engine = TransformersEngine(config)
    engine.load()
    engine.warm_up()
    return engine


def complete(engine, **sampling):
    return asyncio.run(engine.generate(ChatCompletionRequest(messages=QUESTION, **sampling)))


def test_auto_on_cuda_serves_nf4_in_bfloat16(tiny_model_dir):
    engine = gpu_engine(tiny_model_dir)
    try:
        assert (engine.config.device, engine.config.dtype) == (Device.CUDA, Dtype.BFLOAT16)
        assert (engine.config.quantization, engine.config.cpu_prepack) == (Quantization.NF4, Prepack.OFF)
        layer = engine.model.model.layers[0].mlp.up_proj
        assert type(layer).__name__ == "Linear4bit" and layer.weight.device.type == "cuda"
        first = complete(engine, max_tokens=12, temperature=1.0, seed=5, ignore_eos=True)
        again = complete(engine, max_tokens=12, temperature=1.0, seed=5, ignore_eos=True)
        assert first == again and first.completion_tokens == 12

        async def together():
            requests = [ChatCompletionRequest(messages=QUESTION, max_tokens=8, temperature=0) for _ in range(4)]
            return await asyncio.gather(*(engine.generate(r) for r in requests))

        assert len({c.text for c in asyncio.run(together())}) == 1
    finally:
        engine.close()


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_bfloat16_and_int8_generate_on_the_gpu(tiny_model_dir, quantization):
    engine = gpu_engine(tiny_model_dir, quantization=quantization)
    try:
        assert engine.model.device.type == "cuda"
        first = complete(engine, max_tokens=12, temperature=1.0, seed=5, ignore_eos=True)
        stop = first.text.split()[3]
        stopped = complete(engine, max_tokens=12, temperature=1.0, seed=5, ignore_eos=True, stop=(stop,))
        assert stopped.text == first.text[: first.text.index(stop)]
        assert stopped.finish_reason is FinishReason.STOP
    finally:
        engine.close()
