"""Models to benchmark: random weights in a real model's exact shape, so nothing is downloaded.

Decoding speed depends on the shape (bytes of weights, layers, heads, vocabulary),
not on the weight values, so a randomly-initialised Qwen2.5-1.5B-Instruct
shape decodes exactly as fast as the real one. The tokenizer is the tiny
model's (ChatML template, 1K vocabulary); the model keeps the real 151,936-wide
vocabulary, so the LM head and sampling cost what they cost in production. Its
generation config suppresses the ids the tiny tokenizer lacks (they would
decode to nothing and a stream would carry no text until the end), as the
real tokenizer's 151,665 tokens nearly cover the real head. Built once into
``models/bench/<shape>/`` (git-ignored) and reused.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct/blob/main/config.json
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-1.5b": {
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
}
DEFAULT_CACHE = Path("models/bench")


def resolve_model(shape: str, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """A model directory for ``tiny``, a known shape, or an existing directory (used as is)."""
    if shape == "tiny":
        from tools.testing.tiny_model import build_tiny_model

        target = cache_dir / "tiny"
        return target if (target / "config.json").is_file() else build_tiny_model(target)
    if shape in SHAPES:
        target = cache_dir / shape
        if not (target / "model.safetensors").is_file():
            build_random_model(shape, target)
        write_generation_config(target)
        return target
    path = Path(shape).expanduser()
    if (path / "config.json").is_file():
        return path
    known = ", ".join(["tiny", *SHAPES])
    raise SystemExit(f"error: --model-shape {shape!r} is neither a known shape ({known}) nor a model directory.")


def build_random_model(shape: str, output: Path) -> Path:
    """Write a random bfloat16 model of ``shape`` with the tiny tokenizer and Qwen2.5's sampling defaults."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tools.testing.tiny_model import END_OF_TEXT, IM_END, build_tokenizer

    started = time.perf_counter()
    tokenizer = build_tokenizer()
    im_end, end_of_text = (tokenizer.convert_tokens_to_ids(t) for t in (IM_END, END_OF_TEXT))
    config = Qwen2Config(**SHAPES[shape], bos_token_id=end_of_text, eos_token_id=im_end, pad_token_id=end_of_text)
    # Allocate without the slow default init (meta device), directly in bfloat16, then fill.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("meta"):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.fill_(1.0)
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    model.model.rotary_emb.__init__(config)  # its buffers were left empty on the meta device
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    write_generation_config(output)
    logger.info(
        "Built a random %s model (%.2fB parameters) in %s in %.0fs",
        shape, sum(p.numel() for p in model.parameters()) / 1e9, output, time.perf_counter() - started,
    )
    return output


def write_generation_config(model_dir: Path) -> None:
    """Qwen2.5-Instruct's sampling defaults, and no ids beyond the tokenizer's vocabulary."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from tools.testing.tiny_model import END_OF_TEXT, IM_END

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocab_size = AutoConfig.from_pretrained(model_dir).vocab_size
    im_end, end_of_text = (tokenizer.convert_tokens_to_ids(t) for t in (IM_END, END_OF_TEXT))
    GenerationConfig(
        bos_token_id=end_of_text, eos_token_id=[im_end, end_of_text], pad_token_id=end_of_text,
        do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05,
        suppress_tokens=list(range(len(tokenizer), vocab_size)),
    ).save_pretrained(model_dir)


def weight_bytes_read_per_token(model: Any) -> int:
    """Bytes of weights one decode step reads: every weight once (quantized ones as stored,
    with their scales), except an input embedding that is not also the LM head (one row is read)."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    head_weight = getattr(head, "weight", None)
    tied = head_weight is not None and head_weight.data_ptr() == embedding.data_ptr()
    total = 0
    seen: set[int] = set()
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() in seen or (tensor is embedding and not tied):
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)  # bitsandbytes 4-bit: scales live outside the parameter
        while state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            state = getattr(state, "state2", None)
    return total
