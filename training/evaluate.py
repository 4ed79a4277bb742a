"""``python -m training evaluate``: validation loss, perplexity, preference accuracy and sample replies, base and
fine-tuned side by side.

    python -m training evaluate --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft --data var/dataset
    python -m training evaluate --model models/ridgeline --adapter var/dpo --data var/dataset   # a dpo adapter
    python -m training evaluate --model models/ridgeline --data var/dataset     # a merged model alone
    python -m training evaluate --grounding --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft \\
        --data var/synth/validation.jsonl     # cited, invented and declined replies (see --grounding --help)

The loss is the mean negative log-likelihood of the assistant's tokens only
(the same tokens ``sft`` trains on) and the perplexity is its exponential.
With ``--adapter`` the same loaded model is measured with the adapter switched
off (the base) and on (fine-tuned). Replies are generated greedily for the
last user turn of the first ``--generations`` conversations. Writes
``report.json`` and ``report.md`` to ``--output`` (default ``ADAPTER/eval``).

When ``prepare`` wrote preference pairs (``preferences_validation.jsonl``), the
report adds the preference accuracy: the share of pairs whose chosen reply the
model gives a higher total log-probability than the rejected one (the replies'
tokens given the prompt, rendered with the chat template as ``dpo`` trains on
them). With only pairs and no conversations, it reports that alone.

``--grounding`` scores the replies instead of the loss, on conversations written by ``synthesize``:
for the last user message of each, the reply is generated and checked with the rule the action
server applies (``ridgeline.grounding``): does it cite a source SKU, name a price, SKU or product
that is not in its sources or the store facts, and decline when the answer is not in the sources.
Writes ``grounding.json`` and ``grounding.md`` next to the loss report.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ridgeline import knowledge
from ridgeline.catalog import Product, read_catalog
from ridgeline.grounding import check_grounding, cites_source, is_decline, sources_in
from training.chat_data import read_conversations, tokenize_conversation
from training.config import ConfigError, EvaluateArgs, GroundingArgs, run_command
from training.formats import DataError

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PREFERENCES_FILE = "preferences_{split}.jsonl"  # written by `prepare` from a preference input


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


# --- preference pairs: does the model give the chosen reply the higher log-probability? ----------------------


def read_pairs(path: str | Path) -> list[dict[str, list[dict[str, str]]]]:
    """The pairs of a ``preferences_<split>.jsonl`` written by ``prepare``, as TRL's conversational preference
    format: ``{"prompt": [messages ending with the user's], "chosen": [one assistant message], "rejected": [...]}``
    (the ``source`` of each line is left out); a ``DataError`` naming the line of a malformed one."""
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(where, f"not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(where, "expected an object with prompt, chosen and rejected")
            pair = {key: _messages(record.get(key), where, key) for key in ("prompt", "chosen", "rejected")}
            if pair["prompt"][-1]["role"] != "user":
                last = pair["prompt"][-1]["role"]
                raise DataError(where, f"prompt must end with the user's message, not the {last}'s")
            for key in ("chosen", "rejected"):
                if len(pair[key]) != 1 or pair[key][0]["role"] != "assistant":
                    raise DataError(where, f"{key} must be one assistant message (the reply to the prompt)")
            pairs.append(pair)
    return pairs


def _messages(value: Any, where: str, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(where, f"{key} must be a non-empty list of messages ({{\"role\": ..., \"content\": ...}}); "
                        "was the file written by `python -m training prepare`?")
    messages = []
    for message in value:
        if not (isinstance(message, dict) and message.get("role") in {"system", "user", "assistant"}
                and isinstance(message.get("content"), str) and message["content"].strip()):
            raise DataError(where, f"{key}: every message needs a role (system, user or assistant) and a "
                            "non-empty text content")
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def pair_token_ids(tokenizer: Any, prompt: list[dict[str, str]],
                   replies: Sequence[list[dict[str, str]]]) -> tuple[list[list[int]], int]:
    """(token ids of prompt + each reply, where the replies start), tokenized as TRL's ``DPOTrainer`` does.

    Each sequence is the chat template's rendering of the whole conversation; the
    prompt is its rendering with the generation prompt, and the reply starts where
    the two first differ for any of the replies (usually right after the prompt).
    """
    def ids(messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
        return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])

    prompt_ids = ids(prompt, add_generation_prompt=True)
    sequences = [ids(prompt + reply) for reply in replies]
    start = min(_common_prefix(prompt_ids, sequence) for sequence in sequences)
    return sequences, start


def _common_prefix(first: list[int], second: list[int]) -> int:
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


def reply_log_probs(model: Any, sequences: list[list[int]], start: int) -> list[float]:
    """The sum of log p(token | everything before it) over the tokens from ``start`` on, for each sequence."""
    import torch

    device = next(model.parameters()).device
    longest = max(len(ids) for ids in sequences)
    input_ids = torch.zeros((len(sequences), longest), dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    with torch.no_grad():
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None].to(device))[..., 0]
    # Position i of log_probs predicts token i + 1: the reply's tokens start..len-1 are predicted at start-1..len-2.
    return [float(log_probs[row, start - 1 : len(ids) - 1].sum()) for row, ids in enumerate(sequences)]


def preference_accuracy(model: Any, tokenizer: Any, pairs: Sequence[dict], max_length: int,
                        desc: str = "preference pairs") -> dict:
    """How often the model prefers the chosen reply: the share of pairs whose chosen reply has the higher total
    log-probability given the prompt (a tie counts as not preferred), with the mean margin and log-probabilities.

    The replies' tokens are those ``dpo`` trains on (``pair_token_ids``), cut at ``max_length`` like its
    batches; a pair whose prompt alone is that long is skipped and counted.
    """
    from tqdm.auto import tqdm

    chosen, rejected, skipped = [], [], 0
    was_training = model.training
    model.eval()
    try:
        for pair in tqdm(pairs, desc=desc, unit=" pairs", disable=None, leave=False):
            sequences, start = pair_token_ids(tokenizer, pair["prompt"], [pair["chosen"], pair["rejected"]])
            if start >= max_length or start == 0:
                skipped += 1
                continue
            good, bad = reply_log_probs(model, [ids[:max_length] for ids in sequences], start)
            chosen.append(good)
            rejected.append(bad)
    finally:
        model.train(was_training)
    if not chosen:
        raise ConfigError(f"No preference pair has a reply token within --max-length {max_length}; raise "
                          "--max-length.")
    margins = [good - bad for good, bad in zip(chosen, rejected)]
    return {
        "pairs": len(chosen),
        "accuracy": round(sum(margin > 0 for margin in margins) / len(margins), 4),
        "margin": round(sum(margins) / len(margins), 4),
        "chosen_logp": round(sum(chosen) / len(chosen), 4),
        "rejected_logp": round(sum(rejected) / len(rejected), 4),
        "skipped": skipped,
    }


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
    """Measure the model (base and fine-tuned with ``--adapter``) on the split's conversations and preference
    pairs, whichever ``prepare`` wrote; write ``report.json`` and ``report.md``."""
    from transformers.utils import logging as transformers_logging

    from training.modeling import load_model

    data_file = Path(args.data) / f"{args.split}.jsonl"
    pairs_file = Path(args.data) / PREFERENCES_FILE.format(split=args.split)
    has_conversations = data_file.is_file() and data_file.stat().st_size > 0
    has_pairs = pairs_file.is_file() and pairs_file.stat().st_size > 0
    if not has_conversations and not has_pairs:
        raise ConfigError(f"--data {args.data}: {data_file.name} (and {pairs_file.name}) is missing or empty; run "
                          "`python -m training prepare` with --val-fraction above 0, or pass --split train.")
    conversations = read_conversations(data_file) if has_conversations else []
    if args.max_examples:
        conversations = conversations[: args.max_examples]
    pairs = read_pairs(pairs_file)[: args.max_pairs] if has_pairs else []
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
        results[name] = {}
        with context:
            if conversations:
                results[name] = loss_on_replies(model, tokenizer, conversations, args.max_length, f"loss ({name})")
                replies[name] = [generate_reply(model, tokenizer, messages, args.max_new_tokens)
                                 for messages, _ in prompts]
                logger.info("%s: loss %.4f, perplexity %.2f", name, results[name]["loss"],
                            results[name]["perplexity"])
            if pairs:
                results[name]["preferences"] = preference_accuracy(model, tokenizer, pairs, args.max_length,
                                                                   f"preference accuracy ({name})")
                logger.info("%s: preference accuracy %.3f on %d pairs", name,
                            results[name]["preferences"]["accuracy"], results[name]["preferences"]["pairs"])

    report = {
        "model": args.model,
        "adapter": args.adapter,
        "data": str(data_file) if conversations else None,
        "conversations": len(conversations),
        "preference_data": str(pairs_file) if pairs else None,
        "pairs": len(pairs),
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


def results_table(report: dict) -> list[str]:
    """The figures of each model side by side: loss rows for conversations, preference rows for pairs."""
    names = list(report["results"])
    results = report["results"]

    def row(title: str, cell: Callable[[dict], str]) -> str:
        return f"| {title} | " + " | ".join(cell(results[n]) for n in names) + " |"

    lines = ["| | " + " | ".join(_TITLES[n] for n in names) + " |", "| --- |" + " ---: |" * len(names)]
    if report["conversations"]:
        lines += [row("loss", lambda r: f"{r['loss']:.4f}"), row("perplexity", lambda r: f"{r['perplexity']:.2f}"),
                  row("assistant tokens", lambda r: str(r["assistant_tokens"]))]
    if report.get("pairs"):
        lines += [row("preference accuracy", lambda r: f"{r['preferences']['accuracy']:.2f}"),
                  row("preference margin (log-prob)", lambda r: f"{r['preferences']['margin']:.2f}")]
    return lines


def render_markdown(report: dict) -> str:
    names = list(report["results"])
    lines = [f"# Evaluation: {report['model']}" + (f" + {report['adapter']}" if report["adapter"] else ""), ""]
    if report["conversations"]:
        lines += [f"{report['conversations']} conversations from `{report['data']}`; loss = mean negative "
                  "log-likelihood of the assistant's tokens, perplexity = exp(loss).", ""]
    if report.get("pairs"):
        pairs = report["results"][names[0]]["preferences"]
        skipped = f" ({pairs['skipped']} left out: the prompt alone fills --max-length)" if pairs["skipped"] else ""
        lines += [f"{report['pairs']} preference pairs from `{report['preference_data']}`{skipped}; preference "
                  "accuracy = share of pairs whose chosen reply gets a higher log-probability (summed over the "
                  "reply's tokens, given the prompt) than the rejected one; margin = mean chosen minus rejected "
                  "log-probability.", ""]
    lines += results_table(report)
    if report["generations"]:
        lines += ["", f"## Replies (greedy, at most {report['settings']['max_new_tokens']} new tokens)"]
    for index, sample in enumerate(report["generations"], start=1):
        lines += ["", f"### {index}", ""]
        for message in sample["context"]:
            lines.append(f"> **{message['role']}:** {_one_line(message['content'])}  ")
        lines += ["", f"- **reference:** {_one_line(sample['reference'])}"]
        lines += [f"- **{_TITLES[n]}:** {_one_line(sample[n]) or '(empty)'}" for n in names]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")




# --- --grounding: do the replies cite, invent or decline? ----------------------------------------------------

GROUNDING_JSON = "grounding.json"
GROUNDING_MD = "grounding.md"
GROUNDING_FLAG = "--grounding"


@dataclass(frozen=True)
class GroundingCase:
    """One question to answer: the conversation up to it, its sources, the reference reply, whether its
    answer is in the sources (the reference does not decline), and every source the prompt holds (the
    earlier turns' too: a reply may name what the model was shown)."""

    messages: list[dict[str, str]]
    sources: list[Product]
    reference: str
    answerable: bool
    shown: list[Product]


def grounding_cases(path: str | Path, catalog: Sequence[Product], store: knowledge.StoreKnowledge,
                    limit: int | None = None) -> list[GroundingCase]:
    """The cases of a synthesized file; ``ValueError`` naming the line for one the catalog cannot read."""
    conversations = read_conversations(path)[:limit]
    cases = []
    for number, (messages, reference) in enumerate(generation_prompts(conversations, len(conversations)), 1):
        try:
            turns = [sources_in(m["content"], catalog) for m in reversed(messages) if m["role"] == "user"]
        except KeyError as exc:
            raise ValueError(f"{path}: conversation {number}: source {exc.args[0]}; pass the --catalog the data "
                             "was synthesized from") from None
        declined = is_decline(reference, catalog, store.store["support_email"], store.store_name)
        shown = list(dict.fromkeys(product for sources in turns for product in sources))
        cases.append(GroundingCase(messages, turns[0], reference, answerable=not declined, shown=shown))
    if not cases:
        raise ValueError(f"{path} holds no conversations; run `python -m training synthesize`.")
    return cases


def score_grounding(cases: Sequence[GroundingCase], replies: Sequence[str], catalog: Sequence[Product],
                    store: knowledge.StoreKnowledge) -> dict:
    """The figures for one model's ``replies`` (one per case, in order), each a share of the replies:

    - ``cites_source``: names a SKU of its sources;
    - ``invented_price``: names a price that is neither a source's nor in the system prompt or the question;
    - ``invented_sku_or_product``: names a SKU or a product that is not a source;
      (for these two, the sources are every product the prompt shows, the earlier turns' included)
    - ``grounded``: invents nothing (``check_grounding(...).ok``);
    - ``decline_accuracy``: of the questions whose answer is absent, the share declined (``is_decline``);
    - ``false_declines``: of the questions the sources answer, the share declined anyway.
    """
    if len(replies) != len(cases):
        raise ValueError(f"{len(replies)} replies for {len(cases)} questions")
    email, store_name = store.store["support_email"], store.store_name
    rows = []
    for case, reply in zip(cases, replies):
        question = case.messages[-1]["content"]
        verdict = check_grounding(reply, case.shown, catalog, allowed_text=f"{case.messages[0]['content']}\n"
                                  f"{question}", store_name=store_name)
        rows.append({"cites_source": cites_source(reply, case.sources),
                     "invented_price": bool(verdict.invented_prices),
                     "invented_sku_or_product": bool(verdict.invented_skus or verdict.invented_products),
                     "grounded": verdict.ok, "declined": is_decline(reply, catalog, email, store_name),
                     "answerable": case.answerable, "reason": verdict.reason})
    absent = [row for row in rows if not row["answerable"]]
    present = [row for row in rows if row["answerable"]]
    figures: dict[str, Any] = {"replies": len(rows), "answerable": len(present), "absent": len(absent)}
    for key in ("cites_source", "invented_price", "invented_sku_or_product", "grounded"):
        figures[key] = _share(rows, key)
    figures["decline_accuracy"] = _share(absent, "declined")
    figures["false_declines"] = _share(present, "declined")
    return {"figures": figures, "replies": rows}


def _share(rows: list[dict], key: str) -> float | None:
    return round(sum(bool(row[key]) for row in rows) / len(rows), 4) if rows else None


def grounding_report(args: GroundingArgs, generate: Callable[[list[dict[str, str]]], str] | None = None) -> dict:
    """Answer every case with the model (and the base too, with ``--adapter``), score, write the report.

    ``generate`` (messages -> reply) replaces the model, for tests and for replies from elsewhere.
    """
    try:
        store = knowledge.load(Path(args.store_facts))
    except knowledge.KnowledgeError as exc:
        raise ConfigError(f"--store-facts: {exc}") from None
    catalog = read_catalog(args.catalog)
    cases = grounding_cases(args.data, catalog, store, args.limit)
    started = time.perf_counter()
    replies: dict[str, list[str]] = {}
    if generate is not None:
        replies["model"] = [generate(case.messages) for case in cases]
    else:
        from transformers.utils import logging as transformers_logging

        from training.modeling import load_model

        transformers_logging.disable_progress_bar()
        model, tokenizer = load_model(args.model, args.dtype, args.quantization, args.adapter)
        variants = ({"base": model.disable_adapter(), "fine_tuned": contextlib.nullcontext()} if args.adapter
                    else {"model": contextlib.nullcontext()})
        for name, context in variants.items():
            with context:
                replies[name] = [generate_reply(model, tokenizer, case.messages, args.max_new_tokens)
                                 for case in cases]
    scores = {name: score_grounding(cases, texts, catalog, store) for name, texts in replies.items()}
    report = {
        "model": args.model,
        "adapter": args.adapter,
        "data": str(args.data),
        "catalog": str(args.catalog),
        "conversations": len(cases),
        "results": {name: score["figures"] for name, score in scores.items()},
        "generations": [
            {"question": case.messages[-1]["content"], "reference": case.reference, "answerable": case.answerable,
             **{name: {"reply": replies[name][i], **scores[name]["replies"][i]} for name in replies}}
            for i, case in enumerate(cases)
        ],
        "settings": {"max_new_tokens": args.max_new_tokens, "decoding": "greedy",
                     "quantization": args.quantization.value, "dtype": args.dtype.value},
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / GROUNDING_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / GROUNDING_MD).write_text(render_grounding_markdown(report), encoding="utf-8")
    return report


_GROUNDING_ROWS = (
    ("cites_source", "cites a source SKU"), ("invented_price", "names a price not in the sources or facts"),
    ("invented_sku_or_product", "names an invented SKU or product"), ("grounded", "invents nothing"),
    ("decline_accuracy", "declines when the answer is absent"), ("false_declines", "declines an answerable question"),
)


def grounding_table(report: dict) -> list[str]:
    names = list(report["results"])
    lines = ["| share of replies that | " + " | ".join(_TITLES[n] for n in names) + " |",
             "| --- |" + " ---: |" * len(names)]
    for key, title in _GROUNDING_ROWS:
        cells = [report["results"][n][key] for n in names]
        lines.append(f"| {title} | " + " | ".join("n/a" if c is None else f"{c:.2f}" for c in cells) + " |")
    return lines


def render_grounding_markdown(report: dict) -> str:
    names = list(report["results"])
    first = report["results"][names[0]]
    lines = [
        f"# Grounding: {report['model']}" + (f" + {report['adapter']}" if report["adapter"] else ""),
        "",
        f"{report['conversations']} questions from `{report['data']}` ({first['answerable']} answered by their "
        f"sources, {first['absent']} not), one greedy reply each, checked with `ridgeline.grounding`.",
        "",
        *grounding_table(report),
        "",
        "## Replies",
    ]
    for index, sample in enumerate(report["generations"], start=1):
        lines += ["", f"### {index}", "", f"> {_one_line(sample['question'].split(chr(10))[0])}", "",
                  f"- **reference:** {_one_line(sample['reference'])}"]
        lines += [f"- **{_TITLES[n]}:** {_one_line(sample[n]['reply']) or '(empty)'} ({sample[n]['reason']})"
                  for n in names]
    return "\n".join(lines) + "\n"


def main_grounding(argv: Sequence[str]) -> int:
    description = GroundingArgs.__doc__ + " See the module's description: python -m training evaluate --help."

    status, args, report = run_command(GroundingArgs, argv, "python -m training evaluate --grounding", description,
                                       grounding_report, data_errors=(ValueError,))  # CatalogError included
    if report is None:
        return status
    print("\n".join(grounding_table(report)))
    print(f"Report: {Path(args.output) / GROUNDING_MD}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if GROUNDING_FLAG in argv:
        return main_grounding([arg for arg in argv if arg != GROUNDING_FLAG])
    description = (f"{__doc__.split(chr(10) * 2)[0]}\n\nWith {GROUNDING_FLAG}: how often replies cite a source, invent "
                   f"a fact or decline; see python -m training evaluate {GROUNDING_FLAG} --help.")

    status, args, report = run_command(EvaluateArgs, argv, "python -m training evaluate", description, evaluate,
                                       data_errors=(DataError,))  # a malformed line of the preference pairs
    if report is None:
        return status
    figures = []
    for name, result in report["results"].items():
        parts = [f"loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f}"] if "loss" in result else []
        if "preferences" in result:
            parts.append(f"preference accuracy {result['preferences']['accuracy']:.2f}")
        figures.append(f"{_TITLES[name]}: {', '.join(parts)}")
    print(f"{'; '.join(figures)}. Report: {Path(args.output) / REPORT_MD}")
    return 0
