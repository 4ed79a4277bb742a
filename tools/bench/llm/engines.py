"""What the benchmark measures per engine beyond throughput: GGUF conversion, bytes read per token of a
GGUF file, and time to first token for a long prompt, cold and with its system prompt in the prefix cache.

The prefix probe builds a system prompt of ``system_tokens`` tokens (with the
model's own tokenizer and chat template) and a question that brings the prompt
to about ``system_tokens + question_tokens``. The server is started with that
system prompt as ``--warm-prompt``; *cold* requests carry another system prompt
of the same length (nothing to reuse), *hit* requests the warmed one.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from tools.bench.llm.measure import WORDS


def gguf_bytes_read_per_token(path: Path) -> int:
    """Bytes of tensors one decode step reads: all of them, except an input embedding that is not also
    the output head (only one row of it is read)."""
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(str(path)).tensors}
    total = sum(tensors.values())
    if "output.weight" in tensors:
        total -= tensors.get("token_embd.weight", 0)
    return total


def conversion_seconds(path: Path) -> dict[str, float]:
    """How long the cached file took to make (from the cache's meta.json files): convert and quantize."""
    meta = json.loads((path.parent / "meta.json").read_text())
    if "from" not in meta:
        return {"convert_s": meta["seconds"], "quantize_s": 0.0}
    base = json.loads((Path(meta["from"]).parent / "meta.json").read_text())
    return {"convert_s": base["seconds"], "quantize_s": meta["seconds"]}


def prefix_prompts(model_dir: Path, system_tokens: int, question_tokens: int) -> dict[str, Any]:
    """A warm system prompt, a cold one of the same length, and a question, sized in the model's tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def count(messages: list[dict], generation: bool = False) -> int:
        return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation,
                                                 return_dict=True)["input_ids"])

    def text_of(tokens: int, salt: int) -> str:
        words: list[str] = []
        while count([{"role": "system", "content": " ".join(words)}]) < tokens:
            words.append(WORDS[(len(words) * 5 + salt) % len(WORDS)])
        return " ".join(words)

    warm = "You answer questions about outdoor gear. " + text_of(system_tokens, 0)
    cold = "Another shop, another persona entirely. " + text_of(system_tokens, 3)
    question = text_of(question_tokens, 7) + "?"
    return {
        "warm": warm,
        "cold": cold,
        "question": question,
        "system_tokens": count([{"role": "system", "content": warm}]),
        "prompt_tokens": count([{"role": "system", "content": warm}, {"role": "user", "content": question}], True),
    }


def time_to_first_token(url: str, messages: list[dict]) -> float:
    body = {"messages": messages, "max_tokens": 2, "ignore_eos": True, "stream": True, "temperature": 0}
    started = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=None) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[len("data: "):]).get("choices") or [{}]
            delta = choices[0].get("delta", {})
            if "role" not in delta and delta.get("content"):
                return time.perf_counter() - started
    raise RuntimeError("the stream ended without a token")


def prefix_ttft(url: str, prompts: dict[str, Any], repeats: int = 2) -> dict[str, float]:
    """Median TTFT of ``repeats`` cold prompts (each its own system prompt) and of prefix-cache hits."""
    cold, hit = [], []
    for i in range(repeats):
        system = f"{i} {prompts['cold']}"  # a different first token each time: never a hit
        cold.append(time_to_first_token(url, [{"role": "system", "content": system},
                                              {"role": "user", "content": prompts["question"]}]))
        hit.append(time_to_first_token(url, [{"role": "system", "content": prompts["warm"]},
                                             {"role": "user", "content": f"{i} {prompts['question']}"}]))
    return {"ttft_cold_s": statistics.median(cold), "ttft_prefix_hit_s": statistics.median(hit),
            "prompt_tokens": prompts["prompt_tokens"], "system_tokens": prompts["system_tokens"]}


def prefix_hit_tokens(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("llm_prefix_cache_hit_tokens_total "):
            return float(line.split()[1])
    return 0.0
