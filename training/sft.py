"""``python -m training sft``: supervised fine-tuning with TRL's ``SFTTrainer``, loss on the assistant's tokens only.

    # LoRA (the default) on the prepared data, TensorBoard logs in var/sft/runs
    python -m training sft --model Qwen/Qwen2.5-1.5B-Instruct --data var/dataset --output var/sft

    # QLoRA: 4-bit NF4 base weights (bitsandbytes), LoRA rank 32, 300 steps
    python -m training sft --model Qwen/Qwen2.5-1.5B-Instruct --data var/dataset --output var/sft \\
        --quantization nf4 --lora-r 32 --max-steps 300

    # continue an interrupted run from its latest checkpoint
    python -m training sft --config var/sft-run.yaml --resume

    # several GPUs (DDP; training/accelerate/fsdp.yaml for FSDP)
    accelerate launch --config_file training/accelerate/ddp.yaml -m training sft --model ... --data ... --output ...

Writes the adapter (or, with ``--lora-r 0``, the whole model) and the tokenizer to
``--output``, checkpoints to ``--output/checkpoint-N``, and ``training_summary.json``
(data, hyper-parameters, losses, speed) that ``merge`` puts into the model card.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

from training import runs
from training.config import ConfigError, Quantization, SFTArgs, run_command
from training.modeling import get_peft_config, load_tokenizer, resolve_dtype
from training.runs import SUMMARY_FILE  # noqa: F401 (training.sft.SUMMARY_FILE, as before: merge reads it)

logger = logging.getLogger(__name__)


def method_name(args: SFTArgs) -> str:
    if args.lora_r == 0:
        return "full fine-tuning"
    return {Quantization.NONE: "LoRA", Quantization.INT8: "LoRA on int8 weights",
            Quantization.NF4: "QLoRA (nf4)"}[args.quantization]


def check_run(args: SFTArgs) -> str | None:
    """The checkpoint to resume from (or None); refuse to mix a new run into an old one."""
    data = Path(args.data)
    return runs.check_run(args, data / "train.jsonl",
                          f"--data {data}: no train.jsonl; run `python -m training prepare --output {data}` first.")


def make_training_config(args: SFTArgs, has_validation: bool, torch_dtype: Any):
    """``SFTConfig`` from the command's arguments (everything TRL and transformers need)."""
    from trl import SFTConfig

    return SFTConfig(**runs.trainer_settings(args, has_validation, torch_dtype),
                     include_num_input_tokens_seen="non_padding")


def load_datasets(args: SFTArgs, tokenizer: Any) -> tuple[Any, Any]:
    """(train, validation or None), tokenized with assistant masks from the ``prepare`` output."""
    from training.chat_data import build_dataset

    try:
        train = build_dataset(tokenizer, Path(args.data) / "train.jsonl", args.max_length)
        validation_file = Path(args.data) / "validation.jsonl"
        validation = None
        if validation_file.is_file() and validation_file.stat().st_size:
            validation = build_dataset(tokenizer, validation_file, args.max_length)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return train, validation


def build_trainer(args: SFTArgs, datasets: tuple[Any, Any] | None = None, callbacks: list | None = None):
    """The ready ``SFTTrainer``: model loaded (quantized if asked), adapters attached, data tokenized.

    ``datasets`` (train, validation) replaces reading ``args.data``, for the benchmark.
    """
    from transformers import set_seed
    from trl import SFTTrainer

    set_seed(args.seed)
    torch_dtype = resolve_dtype(args.dtype)
    tokenizer = load_tokenizer(args.model)
    train, validation = datasets if datasets is not None else load_datasets(args, tokenizer)
    model = runs.load_training_model(args, torch_dtype)

    trainer = SFTTrainer(
        model=model,
        args=make_training_config(args, validation is not None, torch_dtype),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        peft_config=get_peft_config(args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules),
        callbacks=callbacks,
    )
    runs.log_trainable(trainer, method_name(args), args.model, torch_dtype)
    return trainer


def run(args: SFTArgs) -> dict:
    """Train (or resume), save the result and ``training_summary.json``; return the summary."""
    from training.chat_data import token_stats

    resume_from = check_run(args)
    logger.info("Fine-tuning with:\n  %s", "\n  ".join(f"{k}: {v}" for k, v in runs.plain(args).items()))
    start = runs.tokens_at_start()
    trainer = build_trainer(args, callbacks=[start])
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - started
    final_eval = runs.final_evaluation(trainer)
    trainer.save_model(args.output)
    if hasattr(trainer, "end"):
        trainer.end()

    history = trainer.state.log_history
    losses = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    evals = [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h]
    summary = {
        "base_model": args.model,
        "method": method_name(args),
        "hyperparameters": runs.plain(args),
        "data": {
            "prepare_stats": runs.read_json(Path(args.data) / "stats.json"),
            "train_tokens": token_stats(trainer.train_dataset),
        },
        "train": runs.train_figures(trainer, result, elapsed, start.tokens, resume_from),
        "eval": {
            "eval_loss_before": evals[0]["eval_loss"] if evals and evals[0]["step"] == 0 else None,
            "eval_loss": final_eval.get("eval_loss"),
            "perplexity": runs.perplexity(final_eval.get("eval_loss")),
        },
        "loss_history": losses,
        "eval_history": evals,
        "versions": runs.versions(),
    }
    runs.write_summary(trainer, args.output, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    status, args, summary = run_command(SFTArgs, argv, "python -m training sft", __doc__.split("\n\n")[0], run)
    if args is None or summary is None:
        return status
    train, evaluation = summary["train"], summary["eval"]
    print(
        f"Trained {summary['method']} for {train['global_step']} steps in {train['runtime_s']} s "
        f"({train['tokens_per_second']} tokens/s); training loss {runs.number(train['train_loss'])}"
        + (f", validation loss {runs.number(evaluation['eval_loss'])} (perplexity {evaluation['perplexity']})"
           if evaluation["eval_loss"] is not None else "")
        + f". Saved to {args.output}."
    )
    return 0
