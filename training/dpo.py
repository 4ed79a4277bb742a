"""``python -m training dpo``: preference tuning on chosen/rejected reply pairs with TRL (DPO, IPO or ORPO).

    # DPO with LoRA on an sft-merged model: the reference is that model (the adapter switched off)
    python -m training dpo --model models/ridgeline --data var/dataset --output var/dpo

    # QLoRA (4-bit NF4 base weights), IPO's loss
    python -m training dpo --model models/ridgeline --data var/dataset --output var/dpo --quantization nf4 --loss ipo

    # ORPO from the instruct model: SFT + preference in one pass, no reference model
    python -m training dpo --model Qwen/Qwen2.5-1.5B-Instruct --data var/dataset --output var/orpo --loss orpo

Trains on ``DATA/preferences_train.jsonl`` (and evaluates on
``preferences_validation.jsonl``), written by ``prepare`` from a preference input.
DPO and IPO use TRL's ``DPOTrainer``; the reference model is the base with the
adapter switched off (no second copy), or with ``--lora-r 0`` a frozen copy of
``--model``. ORPO uses TRL's ``ORPOTrainer`` and has no reference model. Writes the
adapter (or whole model) and tokenizer to ``--output``, checkpoints, TensorBoard
logs in ``--output/runs`` (``rewards/accuracies``, ``rewards/margins``) and
``training_summary.json``, which ``merge`` puts into the model card.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

from training import runs
from training.config import ConfigError, DPOArgs, PreferenceLoss, Quantization, run_command
from training.evaluate import pair_token_ids, preference_accuracy, read_pairs
from training.formats import DataError
from training.modeling import get_peft_config, load_tokenizer, resolve_dtype

logger = logging.getLogger(__name__)

TRAIN_FILE = "preferences_train.jsonl"
VALIDATION_FILE = "preferences_validation.jsonl"
MEASURED_PAIRS = 256  # pairs whose preference accuracy the summary gives, before and after training

TITLES = {PreferenceLoss.DPO: "DPO", PreferenceLoss.IPO: "IPO", PreferenceLoss.ORPO: "ORPO"}
TRL_LOSS_TYPES = {PreferenceLoss.DPO: "sigmoid", PreferenceLoss.IPO: "ipo"}  # DPOConfig.loss_type


def method_name(args: DPOArgs) -> str:
    """``DPO (LoRA)``, ``IPO (QLoRA, nf4)``, ``ORPO (full fine-tuning)``..."""
    if args.lora_r == 0:
        weights = "full fine-tuning"
    else:
        weights = {Quantization.NONE: "LoRA", Quantization.INT8: "LoRA, int8",
                   Quantization.NF4: "QLoRA, nf4"}[args.quantization]
    return f"{TITLES[args.loss]} ({weights})"


def reference_model(args: DPOArgs) -> str:
    if args.loss is PreferenceLoss.ORPO:
        return "none (ORPO needs no reference model)"
    if args.lora_r == 0:
        return f"a frozen copy of {args.model}"
    return f"{args.model} with the adapter switched off"


def check_run(args: DPOArgs) -> str | None:
    """The checkpoint to resume from (or None); refuse an adapter as --model and a new run mixed into an old one."""
    model = Path(args.model)
    if (model / "adapter_config.json").is_file() and not (model / "config.json").is_file():
        raise ConfigError(f"--model {model} is an adapter, not a model: merge it into its base first (`python -m "
                          f"training merge --model BASE --adapter {model} --output DIR`) and pass --model DIR.")
    data = Path(args.data)
    return runs.check_run(
        args, data / TRAIN_FILE,
        f"--data {data}: no {TRAIN_FILE}; run `python -m training prepare --input ... --output {data}` with a file "
        "of preference pairs (a prompt with a chosen and a rejected reply) among its inputs first.",
    )


def read_pair_files(args: DPOArgs) -> tuple[list[dict], list[dict] | None]:
    """(train pairs, validation pairs or None) from ``--data``; ``DataError`` for a malformed line."""
    data = Path(args.data)
    train = read_pairs(data / TRAIN_FILE)
    if not train:
        raise ConfigError(f"--data {data}: {TRAIN_FILE} holds no pairs; run `python -m training prepare` with "
                          "more preference data.")
    validation_file = data / VALIDATION_FILE
    validation = read_pairs(validation_file) if validation_file.is_file() else None
    return train, validation or None


def pair_stats(tokenizer: Any, pairs: list[dict], max_length: int, name: str) -> dict[str, int]:
    """Token counts of the pairs as ``dpo`` trains on them; refuse when ``max_length`` leaves no reply at all.

    TRL cuts a sequence at ``max_length`` and leaves out a pair whose prompt alone
    is that long; this says how many, before the model is loaded.
    """
    stats = {"pairs": len(pairs), "tokens": 0, "reply_tokens": 0, "max_tokens": 0, "cut": 0, "left_out": 0}
    shortest_prompt = None
    for pair in pairs:
        sequences, start = pair_token_ids(tokenizer, pair["prompt"], [pair["chosen"], pair["rejected"]])
        shortest_prompt = start if shortest_prompt is None else min(shortest_prompt, start)
        stats["tokens"] += sum(len(ids) for ids in sequences)
        stats["reply_tokens"] += sum(len(ids) - start for ids in sequences)
        stats["max_tokens"] = max(stats["max_tokens"], *(len(ids) for ids in sequences))
        stats["cut"] += any(len(ids) > max_length for ids in sequences)
        stats["left_out"] += start >= max_length
    if stats["left_out"] == len(pairs):
        raise ConfigError(f"{name}: no pair has a reply within --max-length {max_length} tokens (the shortest prompt "
                          f"is {shortest_prompt} tokens, most of it the system prompt); raise --max-length.")
    if stats["cut"]:
        logger.warning("%d of %d pairs in %s are longer than --max-length %d tokens: they are cut there%s",
                       stats["cut"], len(pairs), name, max_length,
                       f", and {stats['left_out']} of them keep no reply and are left out" if stats["left_out"] else "")
    return stats


def make_training_config(args: DPOArgs, has_validation: bool, torch_dtype: Any):
    """``DPOConfig`` (dpo, ipo) or ``ORPOConfig`` (orpo) from the command's arguments."""
    settings = runs.trainer_settings(args, has_validation, torch_dtype)
    if args.loss is PreferenceLoss.ORPO:
        from trl.experimental.orpo import ORPOConfig

        # ORPO's batches hold chosen_/rejected_input_ids, not the input_ids the trainer counts tokens of.
        return ORPOConfig(**settings, beta=args.beta, remove_unused_columns=False, include_num_input_tokens_seen="no")
    from trl import DPOConfig

    return DPOConfig(**settings, beta=args.beta, loss_type=[TRL_LOSS_TYPES[args.loss]],
                     include_num_input_tokens_seen="non_padding")


def build_trainer(args: DPOArgs, pairs: tuple[list[dict], list[dict] | None] | None = None,
                  callbacks: list | None = None):
    """The ready ``DPOTrainer`` or ``ORPOTrainer``: model loaded (quantized if asked), adapters attached.

    ``pairs`` (train, validation or None) replaces reading ``args.data``.
    """
    from datasets import Dataset
    from transformers import set_seed

    set_seed(args.seed)
    torch_dtype = resolve_dtype(args.dtype)
    tokenizer = load_tokenizer(args.model)
    if pairs is None:
        pairs = read_pair_files(args)
        pair_stats(tokenizer, pairs[0], args.max_length, TRAIN_FILE)
    train, validation = (None if p is None else Dataset.from_list(p) for p in pairs)
    model = runs.load_training_model(args, torch_dtype)
    common = dict(model=model, args=make_training_config(args, validation is not None, torch_dtype),
                  train_dataset=train, eval_dataset=validation, processing_class=tokenizer, callbacks=callbacks,
                  peft_config=get_peft_config(args.lora_r, args.lora_alpha, args.lora_dropout,
                                              args.lora_target_modules))
    if args.loss is PreferenceLoss.ORPO:
        from trl.experimental.orpo import ORPOTrainer

        trainer = ORPOTrainer(**common)
    else:
        from trl import DPOTrainer

        # No ref_model: with LoRA, TRL computes the reference log-probs with the adapter switched off (one copy of
        # the weights); with --lora-r 0 it loads a frozen copy of --model.
        trainer = DPOTrainer(ref_model=None, **common)
    runs.log_trainable(trainer, method_name(args), args.model, torch_dtype)
    return trainer


def measure(trainer: Any, pairs: list[dict], max_length: int, when: str) -> dict | None:
    """Preference accuracy of the trainer's model on ``pairs`` (``evaluate.preference_accuracy``)."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return None  # the model is sharded across processes; `python -m training evaluate` measures the result
    return preference_accuracy(trainer.model, trainer.processing_class, pairs, max_length,
                               desc=f"preference accuracy ({when})")


def _last(history: list[dict], key: str) -> float | None:
    found = [h[key] for h in history if key in h]
    return found[-1] if found else None


def run(args: DPOArgs) -> dict:
    """Train (or resume), save the result and ``training_summary.json``; return the summary."""
    resume_from = check_run(args)
    logger.info("Preference tuning with:\n  %s", "\n  ".join(f"{k}: {v}" for k, v in runs.plain(args).items()))
    train_pairs, validation_pairs = read_pair_files(args)
    tokenizer = load_tokenizer(args.model)
    stats = {"train": pair_stats(tokenizer, train_pairs, args.max_length, TRAIN_FILE)}
    if validation_pairs:
        stats["validation"] = pair_stats(tokenizer, validation_pairs, args.max_length, VALIDATION_FILE)
    measured_split = "validation" if validation_pairs else "train"
    measured = (validation_pairs or train_pairs)[:MEASURED_PAIRS]

    start = runs.tokens_at_start()
    trainer = build_trainer(args, (train_pairs, validation_pairs), callbacks=[start])
    before = measure(trainer, measured, args.max_length, "before")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - started
    final_eval = runs.final_evaluation(trainer)
    after = measure(trainer, measured, args.max_length, "after")
    trainer.save_model(args.output)
    if hasattr(trainer, "end"):
        trainer.end()

    history = trainer.state.log_history
    logged = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")
    losses = [{"step": h["step"], **{k: h[k] for k in logged if k in h}} for h in history if "loss" in h]
    evals = [{"step": h["step"], **{k: h[f"eval_{k}"] for k in logged if f"eval_{k}" in h}}
             for h in history if "eval_loss" in h]
    summary = {
        "base_model": args.model,
        "command": "dpo",
        "method": method_name(args),
        "objective": {"loss": args.loss.value, "beta": args.beta, "reference_model": reference_model(args),
                      **({"trl_loss_type": TRL_LOSS_TYPES[args.loss]} if args.loss in TRL_LOSS_TYPES else {})},
        "hyperparameters": runs.plain(args),
        "data": {
            "prepare_stats": runs.read_json(Path(args.data) / "stats.json"),
            "pairs": {"train": len(train_pairs), "validation": len(validation_pairs or [])},
            "train_tokens": stats["train"],
            "validation_tokens": stats.get("validation"),
        },
        "train": runs.train_figures(trainer, result, elapsed, start.tokens, resume_from),
        "rewards": {  # TRL's own figures, from the last training log and the last evaluation
            "accuracy": _last(history, "rewards/accuracies"),
            "margin": _last(history, "rewards/margins"),
            "eval_accuracy": final_eval.get("eval_rewards/accuracies"),
            "eval_margin": final_eval.get("eval_rewards/margins"),
        },
        "eval": {
            "eval_loss_before": evals[0]["loss"] if evals and evals[0]["step"] == 0 else None,
            "eval_loss": final_eval.get("eval_loss"),
        },
        "preference_accuracy": {
            "split": measured_split,
            "pairs": len(measured),
            "before": before,
            "after": after,
        },
        "loss_history": losses,
        "eval_history": evals,
        "versions": runs.versions(),
    }
    runs.write_summary(trainer, args.output, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0] + (
        " --loss orpo trains with no reference model. Default learning rates are a tenth of sft's (see "
        "--learning-rate)."
    )

    status, args, summary = run_command(DPOArgs, argv, "python -m training dpo", description, run,
                                        data_errors=(DataError,))  # a malformed line of the pairs, as `prepare`
    if summary is None:
        return status
    train, rewards, accuracy = summary["train"], summary["rewards"], summary["preference_accuracy"]
    figures = [f"training loss {runs.number(train['train_loss'])}"]
    if rewards["accuracy"] is not None:
        figures.append(f"reward accuracy {rewards['accuracy']:.2f}, margin {rewards['margin']:.3f}")
    if accuracy["before"] and accuracy["after"]:
        figures.append(f"preference accuracy on {accuracy['pairs']} {accuracy['split']} pairs "
                       f"{accuracy['before']['accuracy']:.2f} -> {accuracy['after']['accuracy']:.2f}")
    print(f"Trained {summary['method']} for {train['global_step']} steps in {train['runtime_s']} s"
          + (f" ({train['tokens_per_second']} tokens/s)" if train["tokens_per_second"] else "")
          + f"; {'; '.join(figures)}. Saved to {args.output}.")
    return 0
