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

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

from training.config import ConfigError, Quantization, ReportTo, SFTArgs, run_command
from training.modeling import (
    device_map_for,
    get_peft_config,
    get_quantization_config,
    keep_4bit_layout_trainable,
    load_tokenizer,
    resolve_dtype,
)

logger = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"


def method_name(args: SFTArgs) -> str:
    if args.lora_r == 0:
        return "full fine-tuning"
    return {Quantization.NONE: "LoRA", Quantization.INT8: "LoRA on int8 weights",
            Quantization.NF4: "QLoRA (nf4)"}[args.quantization]


def last_checkpoint(output: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output) if Path(output).is_dir() else None


def check_run(args: SFTArgs) -> str | None:
    """The checkpoint to resume from (or None); refuse to mix a new run into an old one."""
    data = Path(args.data)
    if not (data / "train.jsonl").is_file():
        raise ConfigError(f"--data {data}: no train.jsonl; run `python -m training prepare --output {data}` first.")
    if args.report_to is ReportTo.WANDB:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError("--report-to wandb needs the wandb package: pip install wandb (then `wandb login`), "
                              "or use --report-to tensorboard.") from None
    checkpoint = last_checkpoint(args.output)
    if args.resume and checkpoint is None:
        raise ConfigError(f"--resume: {args.output} has no checkpoint-N folder to continue from; run without "
                          "--resume to start training.")
    if not args.resume and checkpoint is not None:
        raise ConfigError(f"{args.output} already holds checkpoints ({Path(checkpoint).name}); pass --resume to "
                          "continue that run, or choose a new --output.")
    return checkpoint if args.resume else None


def make_training_config(args: SFTArgs, has_validation: bool, torch_dtype: Any):
    """``SFTConfig`` from the command's arguments (everything TRL and transformers need)."""
    import os

    import torch
    from trl import SFTConfig

    checkpointing = args.gradient_checkpointing
    if checkpointing and os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "false").lower() == "true":
        logger.info("FSDP checkpoints the activations (training/accelerate/fsdp.yaml); the trainer's own "
                    "gradient checkpointing is off")
        checkpointing = False

    return SFTConfig(
        output_dir=args.output,
        max_steps=args.max_steps,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup_ratio,  # below 1: a share of the steps
        logging_steps=args.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=args.eval_steps,
        eval_on_start=has_validation,  # the base model's validation loss, for comparison
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        report_to=[] if args.report_to is ReportTo.NONE else [args.report_to.value],
        seed=args.seed,
        data_seed=args.seed,
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        # Mixed precision is a GPU matter; on the CPU the weights simply are in --dtype.
        bf16=torch_dtype == torch.bfloat16 and torch.cuda.is_available(),
        fp16=torch_dtype == torch.float16 and torch.cuda.is_available(),
        max_length=args.max_length,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


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
    import torch
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTTrainer

    set_seed(args.seed)
    torch_dtype = resolve_dtype(args.dtype)
    # Full fine-tuning in float16 keeps float32 master weights (mixed precision); float16 weights cannot be trained.
    load_dtype = torch.float32 if (args.lora_r == 0 and torch_dtype == torch.float16) else torch_dtype
    tokenizer = load_tokenizer(args.model)
    train, validation = datasets if datasets is not None else load_datasets(args, tokenizer)

    kwargs: dict[str, Any] = {"dtype": load_dtype}
    quantization_config = get_quantization_config(args.quantization, torch_dtype)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    device_map = device_map_for(args.quantization)
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs)
    model.config.use_cache = False  # no KV cache while training (and gradient checkpointing needs it off)
    if args.quantization is Quantization.NF4:
        keep_4bit_layout_trainable(model)

    trainer = SFTTrainer(
        model=model,
        args=make_training_config(args, validation is not None, torch_dtype),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        peft_config=get_peft_config(args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules),
        callbacks=callbacks,
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    logger.info("%s of %s: %s of %s parameters trainable (%.2f%%), compute dtype %s", method_name(args),
                args.model, f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1), torch_dtype)
    return trainer


def run(args: SFTArgs) -> dict:
    """Train (or resume), save the result and ``training_summary.json``; return the summary."""
    from training.chat_data import token_stats

    resume_from = check_run(args)
    logger.info("Fine-tuning with:\n  %s", "\n  ".join(f"{k}: {v}" for k, v in _plain(args).items()))
    start = _tokens_at_start()
    trainer = build_trainer(args, callbacks=[start])
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - started
    final_eval: dict = {}
    if trainer.eval_dataset is not None:
        done = [h for h in trainer.state.log_history if "eval_loss" in h]
        last_step_evaluated = done and done[-1]["step"] == trainer.state.global_step
        final_eval = done[-1] if last_step_evaluated else trainer.evaluate()
    trainer.save_model(args.output)
    if hasattr(trainer, "end"):
        trainer.end()

    state = trainer.state
    history = state.log_history
    losses = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    evals = [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h]
    metrics = result.metrics
    tokens_seen = int(state.num_input_tokens_seen or 0)
    tokens_this_run = tokens_seen - start.tokens
    summary = {
        "base_model": args.model,
        "method": method_name(args),
        "hyperparameters": _plain(args),
        "data": {
            "prepare_stats": _read_json(Path(args.data) / "stats.json"),
            "train_tokens": token_stats(trainer.train_dataset),
        },
        "train": {
            "global_step": state.global_step,
            "epochs": round(state.epoch or 0, 3),
            "train_loss": metrics.get("train_loss"),
            "runtime_s": round(metrics.get("train_runtime", elapsed), 2),
            "steps_per_second": metrics.get("train_steps_per_second"),
            "samples_per_second": metrics.get("train_samples_per_second"),
            "tokens_seen": tokens_seen,
            "tokens_per_second": round(tokens_this_run / elapsed, 1) if elapsed and tokens_this_run else None,
            "resumed_from": Path(resume_from).name if resume_from else None,
        },
        "eval": {
            "eval_loss_before": evals[0]["eval_loss"] if evals and evals[0]["step"] == 0 else None,
            "eval_loss": final_eval.get("eval_loss"),
            "perplexity": _perplexity(final_eval.get("eval_loss")),
        },
        "loss_history": losses,
        "eval_history": evals,
        "versions": _versions(),
    }
    if trainer.is_world_process_zero():
        (Path(args.output) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _tokens_at_start():
    """A callback that records the tokens already seen when training starts (non-zero after --resume)."""
    from transformers import TrainerCallback

    class TokensAtStart(TrainerCallback):
        tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.tokens = int(state.num_input_tokens_seen or 0)

    return TokensAtStart()


def _perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return round(math.exp(loss), 3) if loss < 50 else float("inf")


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _plain(args: SFTArgs) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(args).items()}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def main(argv: Sequence[str] | None = None) -> int:
    status, args, summary = run_command(SFTArgs, argv, "python -m training sft", __doc__.split("\n\n")[0], run)
    if args is None or summary is None:
        return status
    train, evaluation = summary["train"], summary["eval"]
    print(
        f"Trained {summary['method']} for {train['global_step']} steps in {train['runtime_s']} s "
        f"({train['tokens_per_second']} tokens/s); training loss {_number(train['train_loss'])}"
        + (f", validation loss {_number(evaluation['eval_loss'])} (perplexity {evaluation['perplexity']})"
           if evaluation["eval_loss"] is not None else "")
        + f". Saved to {args.output}."
    )
    return 0
