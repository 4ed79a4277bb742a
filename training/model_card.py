"""The merged model's README.md: where it came from, on what data, with which settings, and how well it does."""

from __future__ import annotations

import json
from typing import Any

HYPERPARAMETERS = (
    "max_steps", "epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "max_length",
    "warmup_ratio", "quantization", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
    "gradient_checkpointing", "dtype", "seed", "loss", "beta",
)


def render(base_model: str, adapter: str, summary: dict | None, eval_report: dict | None, merge: dict) -> str:
    """Markdown with a Hugging Face metadata header; every section says when its source was missing."""
    preference = (summary or {}).get("command") == "dpo"
    method = (summary or {}).get("method", "LoRA")
    kind = summary["objective"]["loss"] if preference else "sft"
    front = {"base_model": base_model, "library_name": "transformers", "pipeline_tag": "text-generation",
             "tags": ["ridgeline-assistant", kind, "lora", "merged"]}
    trained = (f"preference-tuned on chosen/rejected reply pairs with {method} (`python -m training dpo`)"
               if preference else f"fine-tuned on the operator's own conversations with {method} "
               "(`python -m training sft`)")
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front.items()), "---", "",
             "# Ridgeline assistant model", "",
             f"`{base_model}` {trained}, adapter `{adapter}` merged into the weights (`python -m training merge`).",
             "",
             "Serve it as is:", "", "```bash", "LLM_MODEL=<this folder> make run",
             "python -m llm serve --model <this folder>   # the LLM service alone", "```", ""]
    lines += _preference_data(summary) if preference else _data(summary)
    lines += _hyperparameters(summary)
    lines += _evaluation(summary, eval_report)
    lines += ["## Merge", "",
              f"- merged weights dtype: {merge['dtype']}",
              f"- largest logit difference, merged vs base + adapter on a probe prompt: "
              f"{merge['max_logit_diff']:.2e}", ""]
    if summary and summary.get("versions"):
        lines += ["## Software", "", ", ".join(f"{k} {v}" for k, v in summary["versions"].items()), ""]
    return "\n".join(lines)


def _data(summary: dict | None) -> list[str]:
    lines = ["## Training data", ""]
    stats = ((summary or {}).get("data") or {}).get("prepare_stats")
    if not stats:
        return lines + ["Not recorded (no training_summary.json with the prepare stats next to the adapter).", ""]
    counts = stats["conversations"]
    lines += [
        f"- conversations: {counts['train']} for training, {counts['validation']} for validation "
        f"({counts['read']} read; {counts['duplicates_dropped']} duplicates, {counts['no_reply_dropped']} without a "
        f"reply and {counts['invalid_skipped']} invalid dropped)",
        "- sources: " + ", ".join(f"`{name}` ({c.get('kept', 0)})" for name, c in stats["inputs"].items()),
        "- personal data replaced by placeholders: "
        + (", ".join(f"{kind} {n}" for kind, n in stats["redactions"].items()) or "none found"),
    ]
    train = stats["splits"]["train"]
    lines.append(f"- training split: {train['user_turns']} user and {train['assistant_turns']} assistant turns, "
                 f"replies of {train['avg_assistant_chars']} characters on average")
    tokens = summary["data"].get("train_tokens") or {}
    if "tokens" in tokens:
        lines.append(f"- training tokens: {tokens['tokens']:,} ({tokens['assistant_tokens']:,} of them in replies, "
                     "the only ones the loss is computed on)")
    return lines + [""]


def _hyperparameters(summary: dict | None) -> list[str]:
    lines = ["## Hyper-parameters", ""]
    if not summary:
        return lines + ["Not recorded.", ""]
    params = summary["hyperparameters"]
    lines += ["| setting | value |", "| --- | --- |"]
    lines += [f"| {key} | {_value(params[key])} |" for key in HYPERPARAMETERS if key in params]
    train = summary.get("train", {})
    lines += ["", f"Trained {train.get('global_step')} steps ({train.get('epochs')} epochs) in "
                  f"{train.get('runtime_s')} s, {train.get('tokens_per_second')} tokens/s; final training loss "
                  f"{_value(train.get('train_loss'))}.", ""]
    objective, rewards = summary.get("objective"), summary.get("rewards") or {}
    if objective:
        lines += [f"Reference model: {objective['reference_model']}. Last logged reward accuracy "
                  f"{_value(rewards.get('accuracy'))} and margin {_value(rewards.get('margin'))} (TRL's "
                  "`rewards/accuracies` and `rewards/margins`).", ""]
    return lines


def _preference_data(summary: dict) -> list[str]:
    """The data of a ``dpo`` run: preference pairs, not conversations."""
    data = summary.get("data") or {}
    pairs, tokens, stats = data.get("pairs") or {}, data.get("train_tokens") or {}, data.get("prepare_stats") or {}
    lines = ["## Training data", "",
             f"- preference pairs (a prompt, a chosen and a rejected reply): {pairs.get('train')} for training, "
             f"{pairs.get('validation')} for validation"]
    if "tokens" in tokens:
        lines.append(f"- training tokens: {tokens['tokens']:,} (prompt + chosen and prompt + rejected), "
                     f"{tokens['reply_tokens']:,} of them in the replies")
    if stats.get("inputs"):
        lines.append("- sources: " + ", ".join(f"`{name}`" for name in stats["inputs"]))
    if "redactions" in stats:
        lines.append("- personal data replaced by placeholders: "
                     + (", ".join(f"{kind} {n}" for kind, n in stats["redactions"].items()) or "none found"))
    return lines + [""]


def _evaluation(summary: dict | None, report: dict | None) -> list[str]:
    lines = ["## Evaluation", ""]
    if report:
        results = report["results"]
        names = [n for n in ("base", "fine_tuned", "model") if n in results]
        measured, notes = [], ["`python -m training evaluate`"]
        if report["conversations"]:
            measured.append(f"{report['conversations']} held-out conversations")
            notes.append("loss on the assistant's tokens")
        if report.get("pairs"):
            measured.append(f"{report['pairs']} held-out preference pairs")
            notes.append("preference accuracy: the share of pairs whose chosen reply gets the higher log-probability")
        lines += [f"On {' and '.join(measured)} ({'; '.join(notes)}):", "",
                  "| | " + " | ".join(n.replace("_", "-") for n in names) + " |",
                  "| --- |" + " ---: |" * len(names)]
        if report["conversations"]:
            lines += ["| loss | " + " | ".join(f"{results[n]['loss']:.4f}" for n in names) + " |",
                      "| perplexity | " + " | ".join(f"{results[n]['perplexity']:.2f}" for n in names) + " |"]
        if report.get("pairs"):
            lines.append("| preference accuracy | "
                         + " | ".join(f"{results[n]['preferences']['accuracy']:.2f}" for n in names) + " |")
        lines.append("")
        for sample in report.get("generations", [])[:2]:
            question = sample["context"][-1]["content"] if sample["context"] else ""
            lines += [f"> **user:** {' '.join(question.split())}  ",
                      *(f"> **{n.replace('_', '-')}:** {' '.join(sample[n].split())}  " for n in names), ""]
        return lines
    accuracy = (summary or {}).get("preference_accuracy") or {}
    if accuracy.get("before") and accuracy.get("after"):
        lines += [f"Preference accuracy on {accuracy['pairs']} {accuracy['split']} pairs (the share whose chosen "
                  f"reply gets the higher log-probability): {accuracy['before']['accuracy']:.2f} before training, "
                  f"{accuracy['after']['accuracy']:.2f} after. Run `python -m training evaluate` for the base and "
                  "fine-tuned side by side.", ""]
        return lines
    evaluation = (summary or {}).get("eval") or {}
    if evaluation.get("eval_loss") is not None:
        before = evaluation.get("eval_loss_before")
        lines += [f"Validation loss during training: {_value(before)} before, {_value(evaluation['eval_loss'])} "
                  f"after (perplexity {_value(evaluation.get('perplexity'))}). Run `python -m training evaluate` "
                  "for sample replies.", ""]
        return lines
    return lines + ["Not evaluated (no validation split and no `evaluate` report).", ""]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "–" if value is None else str(value)
