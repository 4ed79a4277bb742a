"""Config -> library objects: dtype, ``BitsAndBytesConfig``, ``LoraConfig``, and loading models and adapters.

Small pure functions in the style of TRL's ``get_quantization_config`` and
``get_peft_config``, so the commands stay short and the choices are tested.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from training.config import ConfigError, Dtype, Quantization

logger = logging.getLogger(__name__)


def resolve_dtype(dtype: Dtype, cuda: bool | None = None, bf16: bool | None = None):
    """``auto`` -> bfloat16 on a GPU that has it, float16 on an older GPU, float32 on the CPU."""
    import torch

    if dtype is not Dtype.AUTO:
        return getattr(torch, dtype.value)
    if cuda is None:
        cuda = torch.cuda.is_available()
    if not cuda:
        return torch.float32
    if bf16 is None:
        bf16 = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16 else torch.float16


def get_quantization_config(quantization: Quantization, compute_dtype: Any = None):
    """``BitsAndBytesConfig`` for int8 or nf4 base weights, ``None`` for none.

    nf4 follows the QLoRA paper: NormalFloat4 with double quantization, computing
    in ``compute_dtype``; the packed weights are stored in that dtype too, which
    FSDP needs to shard them.
    """
    if quantization is Quantization.NONE:
        return None
    from transformers import BitsAndBytesConfig

    if quantization is Quantization.INT8:
        return BitsAndBytesConfig(load_in_8bit=True)
    import torch

    compute_dtype = compute_dtype or torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=compute_dtype,
    )


def get_peft_config(lora_r: int, lora_alpha: int = 32, lora_dropout: float = 0.05,
                    target_modules: list[str] | str = "all-linear"):
    """``LoraConfig`` for a causal LM, or ``None`` when ``lora_r`` is 0 (full fine-tuning)."""
    if lora_r == 0:
        return None
    from peft import LoraConfig

    if isinstance(target_modules, list) and target_modules == ["all-linear"]:
        target_modules = "all-linear"
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules,
        bias="none",
    )


def load_tokenizer(source: str):
    """The tokenizer with a pad token (the EOS token when the model has none) and a chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{source}: the tokenizer has no chat template; fine-tune an instruct/chat model "
                          "(e.g. Qwen/Qwen2.5-1.5B-Instruct), whose template the LLM service also uses.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def device_map_for(quantization: Quantization):
    """Where ``from_pretrained`` puts the weights: bitsandbytes layers must be placed at load time.

    CPU: in place. GPU: one whole copy on each process's own GPU (a single run, or
    DDP under ``accelerate launch``). FSDP: left to FSDP, which shards the weights.
    """
    import os

    import torch

    if not torch.cuda.is_available():
        return {"": "cpu"} if quantization is not Quantization.NONE else None
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in {"1", "true"}:
        return None
    from accelerate import PartialState

    return {"": PartialState().local_process_index}  # one full copy per process (DDP)


def load_model(model: str, dtype: Dtype, quantization: Quantization = Quantization.NONE, adapter: str | None = None):
    """(model in eval mode, tokenizer); with ``adapter``, a ``PeftModel`` whose adapter can be disabled."""
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    quantization_config = get_quantization_config(quantization, torch_dtype)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    device_map = device_map_for(quantization)
    if device_map is not None:
        kwargs["device_map"] = device_map
    tokenizer_source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else model
    tokenizer = load_tokenizer(tokenizer_source)
    loaded = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    if device_map is None and torch.cuda.is_available():
        loaded.to("cuda")
    if adapter:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ConfigError(f"--adapter {adapter}: no adapter_config.json; pass the folder `sft` wrote "
                              "(its --output), or a checkpoint-N folder inside it.")
        loaded = PeftModel.from_pretrained(loaded, adapter)
    loaded.eval()
    return loaded, tokenizer


def keep_4bit_layout_trainable(model: Any) -> int:
    """Stop bitsandbytes' CPU inference repacking of 4-bit weights; return how many layers it affects.

    On CPUs with AVX512-BF16, bitsandbytes (0.47-0.50) repacks a ``Linear4bit``'s
    weights for a faster kernel the first time it runs in eval mode (the
    evaluation during training) and keeps that layout, whose kernel then fails in
    the backward pass ("a view of a leaf Variable ... in-place operation").
    Training keeps the ordinary layout; GPUs are not affected.
    """
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    layers = [m for m in model.modules() if isinstance(m, Linear4bit) and getattr(m, "support_avx512bf16_for_cpu", 0)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)
