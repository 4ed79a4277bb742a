"""``python -m training evaluate``: validation loss, perplexity and sample replies, base and fine-tuned side by side.

    python -m training evaluate --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft --data var/dataset
    python -m training evaluate --model models/ridgeline --data var/dataset     # a merged model alone

The loss is the mean negative log-likelihood of the assistant's tokens only
(the same tokens ``sft`` trains on) and the perplexity is its exponential.
With ``--adapter`` the same loaded model is measured with the adapter switched
off (the base) and on (fine-tuned). Replies are generated greedily for the
last user turn of the first ``--generations`` conversations. Writes
``report.json`` and ``report.md`` to ``--output`` (default ``ADAPTER/eval``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

from training.chat_data import read_conversations, tokenize_conversation
from training.config import ConfigError, EvaluateArgs, run_command

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def loss_on_replies(model: Any, tokenizer: Any, conversations: list, max_length: int, desc: str) -> dict:
    """Mean NLL per assistant token, its perplexity, and the token count."""
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    with torch.no_grad():
        for messages in tqdm(conversations, desc=desc, unit=" conversations", disable=None, leave=False):
            for example in tokenize_conversation(tokenizer, messages):
                ids = example["input_ids"][:max_length]
                labels = [t if m else -100 for t, m in zip(ids, example["assistant_masks"][:max_length])]
                counted = sum(label != -100 for label in labels[1:])  # the model predicts token i+1 from i
                if not counted:
                    continue
                output = model(input_ids=torch.tensor([ids], device=device),
                               labels=torch.tensor([labels], device=device))
                total_nll += float(output.loss) * counted
                total_tokens += counted
    if not total_tokens:
        raise ConfigError("No assistant token is left to evaluate; raise --max-length.")
    loss = total_nll / total_tokens
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 3) if loss < 50 else float("inf"),
            "assistant_tokens": total_tokens}


def greedy_config(model: Any, max_new_tokens: int) -> Any:
    """The model's own generation config, greedy: as the LLM service answers a ``temperature: 0`` request."""
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.temperature, config.top_p, config.top_k = 1.0, 1.0, 50
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.num_return_sequences = 1
    return config


def generate_reply(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    import torch

    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(next(model.parameters()).device)
    config = greedy_config(model, max_new_tokens)
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    with torch.no_grad():
        output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    return tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True).strip()


def generation_prompts(conversations: list, count: int) -> list[tuple[list[dict[str, str]], str]]:
    """(messages up to the last reply, that reply) for the first ``count`` conversations."""
    prompts = []
    for messages in conversations[:count]:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompts.append((messages[:last], messages[last]["content"]))
    return prompts


def evaluate(args: EvaluateArgs) -> dict:
    from transformers.utils import logging as transformers_logging

    from training.modeling import load_model

    data_file = Path(args.data) / f"{args.split}.jsonl"
    if not data_file.is_file() or not data_file.stat().st_size:
        raise ConfigError(f"--data {args.data}: {data_file.name} is missing or empty; run `python -m training "
                          "prepare` with --val-fraction above 0, or pass --split train.")
    conversations = read_conversations(data_file)
    if args.max_examples:
        conversations = conversations[: args.max_examples]
    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    model, tokenizer = load_model(args.model, args.dtype, args.quantization, args.adapter)
    variants: dict[str, contextlib.AbstractContextManager] = {}
    if args.adapter:
        variants["base"] = model.disable_adapter()
        variants["fine_tuned"] = contextlib.nullcontext()
    else:
        variants["model"] = contextlib.nullcontext()

    results: dict[str, dict] = {}
    replies: dict[str, list[str]] = {}
    prompts = generation_prompts(conversations, args.generations)
    for name, context in variants.items():
        with context:
            results[name] = loss_on_replies(model, tokenizer, conversations, args.max_length, f"loss ({name})")
            replies[name] = [generate_reply(model, tokenizer, messages, args.max_new_tokens)
                             for messages, _ in prompts]
        logger.info("%s: loss %.4f, perplexity %.2f", name, results[name]["loss"], results[name]["perplexity"])

    report = {
        "model": args.model,
        "adapter": args.adapter,
        "data": str(data_file),
        "conversations": len(conversations),
        "results": results,
        "generations": [
            {"context": messages[1:], "reference": reference, **{name: replies[name][i] for name in variants}}
            for i, (messages, reference) in enumerate(prompts)
        ],
        "settings": {"max_length": args.max_length, "max_new_tokens": args.max_new_tokens, "decoding": "greedy",
                     "quantization": args.quantization.value, "dtype": args.dtype.value},
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    return report


_TITLES = {"base": "base", "fine_tuned": "fine-tuned", "model": "model"}


def render_markdown(report: dict) -> str:
    names = list(report["results"])
    lines = [
        f"# Evaluation: {report['model']}" + (f" + {report['adapter']}" if report["adapter"] else ""),
        "",
        f"{report['conversations']} conversations from `{report['data']}`; loss = mean negative log-likelihood "
        "of the assistant's tokens, perplexity = exp(loss).",
        "",
        "| | " + " | ".join(_TITLES[n] for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
        "| loss | " + " | ".join(f"{report['results'][n]['loss']:.4f}" for n in names) + " |",
        "| perplexity | " + " | ".join(f"{report['results'][n]['perplexity']:.2f}" for n in names) + " |",
        "| assistant tokens | " + " | ".join(str(report["results"][n]["assistant_tokens"]) for n in names) + " |",
        "",
        f"## Replies (greedy, at most {report['settings']['max_new_tokens']} new tokens)",
    ]
    for index, sample in enumerate(report["generations"], start=1):
        lines += ["", f"### {index}", ""]
        for message in sample["context"]:
            lines.append(f"> **{message['role']}:** {_one_line(message['content'])}  ")
        lines += ["", f"- **reference:** {_one_line(sample['reference'])}"]
        lines += [f"- **{_TITLES[n]}:** {_one_line(sample[n]) or '(empty)'}" for n in names]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    status, args, report = run_command(EvaluateArgs, argv, "python -m training evaluate", __doc__.split("\n\n")[0], evaluate)
    if args is None or report is None:
        return status
    figures = ", ".join(f"{_TITLES[name]}: loss {r['loss']:.4f}, perplexity {r['perplexity']:.2f}"
                        for name, r in report["results"].items())
    print(f"{figures}. Report: {Path(args.output) / REPORT_MD}")
    return 0
