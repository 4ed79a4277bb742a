"""Faster CPU decoding: linear weights repacked once into oneDNN's blocked layout.

``torch.nn.Linear`` on the CPU hands bfloat16 weights to a generic GEMM that
re-lays them out on every call; at batch size 1 that costs more than reading
them. oneDNN can take the weights in its own blocked format, packed once at
start-up (``torch.ops.mkldnn._reorder_linear_weight``), and then multiplies
with AVX512-BF16/AMX at close to memory bandwidth. PyTorch's own
``torch.compile`` does exactly this for CPU linears when weights are frozen;
doing it directly avoids compile time and shape recompiles as the batch
changes size. ``prepack_linears`` swaps every plain ``nn.Linear`` of the model
(not bitsandbytes or LoRA layers) for a ``PackedLinear`` holding the packed
weight only; it measured 1.7x faster per decode step on a Qwen2.5-1.5B shape
(see llm/README.md, Performance).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)


class PackedLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` in oneDNN's blocked layout (inference only)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        weight = linear.weight.detach()
        self.weight_dtype = weight.dtype
        self.register_buffer("packed_weight", torch.ops.mkldnn._reorder_linear_weight(weight, None), persistent=False)
        bias = linear.bias.detach() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.weight_dtype:
            x = x.to(self.weight_dtype)
        flat = x.reshape(-1, self.in_features)
        y = torch.ops.mkldnn._linear_pointwise(flat, self.packed_weight, self.bias, "none", [None], "")
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.weight_dtype}, packed"


def prepack_supported() -> str | None:
    """None when prepacking works here; otherwise a sentence saying why not."""
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN (mkldnn)"
    for name in ("_reorder_linear_weight", "_linear_pointwise"):
        if not hasattr(torch.ops.mkldnn, name):
            return f"this PyTorch build lacks torch.ops.mkldnn.{name}"
    return _probe_bfloat16_packing()


def _probe_bfloat16_packing() -> str | None:
    """oneDNN's bfloat16 packing needs CPU features (AVX512 or AVX-NE-CONVERT) a build cannot promise."""
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(16, 16, dtype=torch.bfloat16), None)
    except RuntimeError as error:
        return f"this CPU cannot pack bfloat16 weights for oneDNN ({str(error).strip().splitlines()[0]})"
    return None


def prepack_linears(model: Any) -> int:
    """Replace the model's plain ``nn.Linear`` modules by ``PackedLinear``; return how many.

    Layers inside a PEFT tuner (the LoRA-wrapped base layer and its A/B
    matrices) are left alone, and so are quantized layers (not plain Linear).
    Each packed module is checked against the original on a random input.
    """
    tuner_types = _tuner_layer_types()
    inside_tuners = {
        id(module)
        for tuner in model.modules()
        if tuner_types and isinstance(tuner, tuner_types)
        for module in tuner.modules()
    }
    replaced = 0
    for parent in list(model.modules()):
        if id(parent) in inside_tuners:
            continue
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Linear or child.weight.device.type != "cpu":
                continue
            packed = PackedLinear(child)
            _check_same(child, packed)
            setattr(parent, name, packed)
            replaced += 1
    # The LM head may have shared its weight with the embeddings; tell transformers not to re-tie.
    if replaced and getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        model.config.tie_word_embeddings = False
    return replaced


def _check_same(linear: nn.Linear, packed: PackedLinear) -> None:
    x = torch.randn(2, linear.in_features, dtype=linear.weight.dtype)
    with torch.inference_mode():
        expected, actual = linear(x).float(), packed(x).float()
    tolerance = 0.05 * expected.abs().max().item() + 1e-3
    if not torch.allclose(expected, actual, atol=tolerance, rtol=0.05):
        raise RuntimeError("oneDNN prepacked linear disagrees with nn.Linear; run with --cpu-prepack off")


def _tuner_layer_types() -> tuple[type, ...]:
    if "peft" not in sys.modules:  # no adapter was loaded (and importing peft would pull in bitsandbytes)
        return ()
    from peft.tuners.tuners_utils import BaseTunerLayer

    return (BaseTunerLayer,)
