"""Model loading failures become one sentence that says what failed and what to do."""

from __future__ import annotations

import json
import shutil

import pytest

from llm.config import Device, Dtype
from llm.engine import loading
from llm.engine.loading import load_model
from llm.errors import ModelLoadError


def load(model_id: str):
    return load_model(model_id, Device.CPU, Dtype.FLOAT32)


def test_tiny_model_loads_with_tokenizer_and_chat_template(tiny_model_dir):
    model, tokenizer = load(str(tiny_model_dir))
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    assert tokenizer.chat_template
    assert tokenizer.decode(tokenizer("warm tent").input_ids) == "warm tent"


def test_missing_local_directory(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        load(str(tmp_path / "nope"))
    message = str(error.value)
    assert message.startswith(f"Could not load model '{tmp_path / 'nope'}': the directory does not exist.")
    assert "make tiny-model" in message


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json, so it is not a Hugging Face model directory"):
        load(str(tmp_path))


def test_model_that_is_not_a_causal_lm(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ModelLoadError, match="it is a 'vit' model, not a causal language model"):
        load(str(tmp_path))


def test_tokenizer_without_chat_template(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "no-template")
    (copy / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match="its tokenizer has no chat template"):
        load(str(copy))


def test_invalid_hub_id():
    with pytest.raises(ModelLoadError, match="neither an existing local directory nor a valid Hugging Face Hub id"):
        load("not a model id!")


def test_hub_id_offline_and_not_cached(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache, and HF_HUB_OFFLINE is set"):
        load("ridgeline-tests/no-such-model")


def test_hub_id_with_the_hub_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "_reachable", lambda endpoint, timeout_s=5.0: False)
    with pytest.raises(ModelLoadError) as error:
        load("ridgeline-tests/no-such-model")
    assert "it is not a local directory and the Hugging Face Hub (https://huggingface.co) could not be reached" in str(
        error.value
    )
    assert "LLM_MODEL" in str(error.value)
