"""GGUF conversion as a cached build step, on the tiny random model (nothing is downloaded)."""

from __future__ import annotations

import shutil

import pytest

from tests.llm.conftest import llamacpp_missing

pytestmark = pytest.mark.skipif(bool(llamacpp_missing()), reason=llamacpp_missing() or "-")


def gguf_fields(path) -> dict:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    values = {}
    for name in ("general.file_type", "tokenizer.ggml.pre", "general.architecture"):
        field = reader.fields[name]
        values[name] = field.contents()
    return values


def test_conversion_is_cached_by_the_checksum_of_the_weights(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from llm.gguf.cache import ensure_gguf

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    cache = tmp_path / "gguf"

    first = ensure_gguf(model, "q8_0", root=cache, threads=1)
    assert not first.reused and first.path.is_file() and first.path.parent.parent == cache
    assert gguf_fields(first.path) == {"general.file_type": 7, "tokenizer.ggml.pre": "qwen2",
                                       "general.architecture": "qwen2"}  # 7: LLAMA_FTYPE_MOSTLY_Q8_0
    written = first.path.stat().st_mtime_ns

    again = ensure_gguf(model, "q8_0", root=cache, threads=1)
    assert (again.reused, again.path, again.seconds) == (True, first.path, 0.0)
    assert again.path.stat().st_mtime_ns == written  # reused, not rewritten

    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    changed = ensure_gguf(model, "q8_0", root=cache, threads=1)
    assert not changed.reused and changed.path != first.path and changed.path.is_file()


def test_convert_command_writes_every_asked_type_and_reuses_the_16_bit_file(tiny_model_dir, tmp_path, capsys):
    from llm.__main__ import main

    assert main(["convert", "--model", str(tiny_model_dir), "--quant", "f16,q8_0", "--cache", str(tmp_path),
                 "--threads", "1"]) == 0
    f16, q8 = capsys.readouterr().out.split()
    assert f16.endswith("model-f16.gguf") and q8.endswith("model-q8_0.gguf")
    assert len(list(tmp_path.glob("*/model-f16.gguf"))) == 1  # q8_0 was quantized from the same f16 file


def test_unknown_model_folder_is_one_sentence(tmp_path, capsys):
    from llm.__main__ import main

    assert main(["convert", "--model", str(tmp_path), "--cache", str(tmp_path / "gguf")]) == 2
    assert "has no config.json; point --model at a Hugging Face model folder" in capsys.readouterr().err
