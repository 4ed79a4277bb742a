"""Load a causal LM and its tokenizer, turning every failure into one actionable sentence.

``load_model`` accepts a local directory or a Hugging Face Hub id. A hub id is
looked up in the local cache first; only on a cache miss is the Hub contacted,
after a quick reachability check, so an offline machine gets an answer in
seconds instead of after huggingface_hub's minute of retries.

Small pure functions turn the configuration into library objects, as TRL
does: ``quantization_config`` gives the ``BitsAndBytesConfig`` (or None), and
``load_adapter`` puts a PEFT LoRA adapter on top of the loaded base model,
unmerged, so one base can serve with or without it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llm.config import Device, Dtype, Quantization
from llm.errors import ModelLoadError

logger = logging.getLogger(__name__)

FIX_HINT = (
    "Set LLM_MODEL (or --model) to a local model directory "
    "(for a demo: `make tiny-model` then LLM_MODEL=models/tiny-qwen2), or allow network access."
)
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def quantization_config(quantization: Quantization, dtype: Dtype) -> Any:
    """The ``BitsAndBytesConfig`` for a quantization choice, or None to load the weights as they are.

    int8 is LLM.int8() (outlier columns in 16-bit); nf4 is 4-bit NormalFloat with
    double quantization, computing in the serving dtype.
    """
    if quantization in (Quantization.NONE, Quantization.AUTO):
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization is Quantization.INT8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, dtype.value),
    )


def load_adapter(model: Any, adapter_dir: str) -> Any:
    """``model`` wrapped in a ``PeftModel`` serving the LoRA adapter in ``adapter_dir``, unmerged."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelLoadError(
            f"Could not load adapter '{adapter_dir}': serving a LoRA adapter needs peft, which is not installed; "
            "pip install 'peft>=0.17' (the train extra) or leave --adapter empty."
        ) from None
    try:
        adapted = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    except Exception as exc:  # shape mismatches, missing files, unsupported adapter types
        raise ModelLoadError(
            f"Could not load adapter '{adapter_dir}' onto the base model: {type(exc).__name__}: {_first_line(exc)}. "
            "Check that it was trained on this base model (its adapter_config.json names the base)."
        ) from exc
    adapted.eval()
    return adapted


def load_model(
    model_id: str,
    device: Device,
    dtype: Dtype,
    quantization: Quantization = Quantization.NONE,
    adapter: str = "",
) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` ready for generation, or raise ``ModelLoadError``."""
    started = time.perf_counter()
    local_dir = check_model_source(model_id)
    local = local_dir is not None
    source: str | Path = local_dir if local_dir is not None else model_id

    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one log line per load, not a progress bar
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype.value)}
    quantized = quantization_config(quantization, dtype)
    if quantized is not None:
        # bitsandbytes places the weights itself; .to() is not allowed afterwards.
        kwargs.update(quantization_config=quantized, device_map={"": device.value})
        # It warns on every int8 matmul that 16-bit inputs are cast to float16.
        logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    try:
        if local:
            model, tokenizer = _from_pretrained(source, kwargs)
        else:
            model, tokenizer = _from_hub(model_id, kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises OSError/ValueError/KeyError/... for bad models
        raise ModelLoadError(explain_load_failure(model_id, local, exc)) from exc

    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"Could not load model '{model_id}': its tokenizer has no chat template; "
            "use an instruct/chat model (e.g. Qwen/Qwen2.5-1.5B-Instruct)."
        )
    if quantized is None:
        try:
            model.to(device.value)
        except (RuntimeError, MemoryError) as exc:
            raise ModelLoadError(
                f"Could not load model '{model_id}': moving it to {device.value} failed ({_first_line(exc)}); "
                "use a smaller model, a smaller --dtype, --quantization int8/nf4, or another --device."
            ) from exc
    model.eval()
    if adapter:
        model = load_adapter(model, adapter)
    logger.info(
        "Loaded %s%s (%s, %s parameters, %s, %s, quantization %s) in %.1fs",
        model_id,
        f" + adapter {adapter}" if adapter else "",
        type(model).__name__,
        f"{sum(p.numel() for p in model.parameters()):,}",
        device.value,
        dtype.value,
        quantization.value,
        time.perf_counter() - started,
    )
    return model, tokenizer


def _from_pretrained(source: str | Path, kwargs: dict[str, Any], **extra: Any) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    # The small config first: a model of the wrong kind fails before any weights are read.
    config = AutoConfig.from_pretrained(source, **extra)
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ModelLoadError(
            f"Could not load model '{source}': it is a {config.model_type!r} model, not a causal language "
            "model that transformers can generate with; use a decoder-only chat model "
            "(e.g. Qwen/Qwen2.5-1.5B-Instruct)."
        )
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, config=config, **kwargs, **extra)
    return model, tokenizer


def _from_hub(model_id: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        raise ModelLoadError(
            f"Could not load model '{model_id}': it is neither an existing local directory nor a valid "
            f"Hugging Face Hub id (like Qwen/Qwen2.5-1.5B-Instruct). {FIX_HINT}"
        ) from None
    try:
        return _from_pretrained(model_id, kwargs, local_files_only=True)
    except OSError:
        pass  # not (completely) in the cache: go to the Hub
    if _hub_offline():
        raise ModelLoadError(
            f"Could not load model '{model_id}': it is not a local directory, it is not in the "
            f"Hugging Face cache, and HF_HUB_OFFLINE is set. {FIX_HINT}"
        )
    endpoint = _hub_endpoint()
    if not _reachable(endpoint):
        raise ModelLoadError(
            f"Could not load model '{model_id}': it is not a local directory and the Hugging Face Hub "
            f"({endpoint}) could not be reached. {FIX_HINT}"
        )
    logger.info("Downloading %s from %s (first start only; later starts use the cache)", model_id, endpoint)
    return _from_pretrained(model_id, kwargs)


def check_model_source(model_id: str) -> Path | None:
    """The model's local directory, or None for a hub id; ``ModelLoadError`` for a path that is no model."""
    path = Path(model_id).expanduser()
    if path.exists():
        _check_local_dir(model_id, path)
        return path
    if _looks_like_path(model_id):
        raise ModelLoadError(f"Could not load model '{model_id}': the directory does not exist. {FIX_HINT}")
    return None


def _check_local_dir(model_id: str, path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"Could not load model '{model_id}': it is a file, not a model directory. {FIX_HINT}")
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"Could not load model '{model_id}': the directory has no config.json, so it is not a "
            f"Hugging Face model directory. {FIX_HINT}"
        )


def _looks_like_path(model_id: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a path."""
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or "\\" in model_id


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _reachable(endpoint: str, timeout_s: float = 5.0) -> bool:
    """Whether a TCP connection to the Hub opens; with a proxy configured, assume yes."""
    if any(os.environ.get(name) for name in _PROXY_VARS):
        return True
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def explain_load_failure(model_id: str, local: bool, exc: BaseException) -> str:
    """One sentence saying what failed and what to do, for an exception from ``from_pretrained``."""
    name = type(exc).__name__
    text = str(exc)
    prefix = f"Could not load model '{model_id}'"
    if "Unrecognized configuration class" in text or "Unrecognized model" in text:
        return (
            f"{prefix}: it is not a causal language model that transformers can generate with; "
            "use a decoder-only chat model (e.g. Qwen/Qwen2.5-1.5B-Instruct)."
        )
    if name == "GatedRepoError":
        return (
            f"{prefix}: the model is gated on the Hub; accept its licence on huggingface.co and set HF_TOKEN, "
            "or set LLM_MODEL to a local model directory."
        )
    if name in {"RepositoryNotFoundError", "HFValidationError"} or "is not a valid model identifier" in text:
        return f"{prefix}: no such model on the Hugging Face Hub (check the spelling). {FIX_HINT}"
    if isinstance(exc, (MemoryError,)) or "out of memory" in text.lower():
        return f"{prefix}: it does not fit in memory; use a smaller model or --dtype bfloat16."
    where = "from the directory" if local else "from the Hub"
    return f"{prefix} {where}: {name}: {_first_line(exc)}. Check that it is a complete transformers checkpoint."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__).rstrip(".")
