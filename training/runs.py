"""What the training commands (``sft``, ``dpo``) share: one run per output folder, the model, the trainer's
settings, and the figures of ``training_summary.json``.

Kept in one place so that a flag, a refusal and a summary field mean the same in
every command, and ``merge`` reads any command's output the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

from training.config import ConfigError, Quantization, ReportTo, TrainingArgs

logger = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"


def last_checkpoint(output: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output) if Path(output).is_dir() else None


def check_run(args: TrainingArgs, required: Path, missing: str) -> str | None:
    """The checkpoint to resume from (or None); refuse to mix a new run into an old one.

    ``required`` is the data file the command trains on; ``missing`` the sentence
    that says how to make it when it is not there.
    """
    if not required.is_file():
        raise ConfigError(missing)
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


def trainer_settings(args: TrainingArgs, has_validation: bool, torch_dtype: Any) -> dict[str, Any]:
    """The ``TrainingArguments`` every command sets the same way, for ``SFTConfig``, ``DPOConfig``, ``ORPOConfig``."""
    import os

    import torch

    checkpointing = args.gradient_checkpointing
    if checkpointing and os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "false").lower() == "true":
        logger.info("FSDP checkpoints the activations (training/accelerate/fsdp.yaml); the trainer's own "
                    "gradient checkpointing is off")
        checkpointing = False

    return dict(
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
        eval_on_start=has_validation,  # the starting model's validation figures, for comparison
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
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def load_training_model(args: TrainingArgs, torch_dtype: Any):
    """``--model`` loaded to be trained: quantized if asked, placed for the run, without its KV cache."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.modeling import device_map_for, get_quantization_config, keep_4bit_layout_trainable

    # Full fine-tuning in float16 keeps float32 master weights (mixed precision); float16 weights cannot be trained.
    load_dtype = torch.float32 if (args.lora_r == 0 and torch_dtype == torch.float16) else torch_dtype
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
    return model


def log_trainable(trainer: Any, method: str, model: str, torch_dtype: Any) -> None:
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    logger.info("%s of %s: %s of %s parameters trainable (%.2f%%), compute dtype %s", method, model,
                f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1), torch_dtype)


def final_evaluation(trainer: Any) -> dict:
    """The last evaluation's logs: the one at the last step if there was one, else a new one (``{}`` without
    validation data)."""
    if trainer.eval_dataset is None:
        return {}
    done = [h for h in trainer.state.log_history if "eval_loss" in h]
    last_step_evaluated = done and done[-1]["step"] == trainer.state.global_step
    return done[-1] if last_step_evaluated else trainer.evaluate()


def train_figures(trainer: Any, result: Any, elapsed: float, tokens_at_start: int, resume_from: str | None) -> dict:
    """The ``train`` block of the summary: steps, loss, time and speed of this run."""
    state = trainer.state
    metrics = result.metrics
    tokens_seen = int(state.num_input_tokens_seen or 0)
    tokens_this_run = tokens_seen - tokens_at_start
    return {
        "global_step": state.global_step,
        "epochs": round(state.epoch or 0, 3),
        "train_loss": metrics.get("train_loss"),
        "runtime_s": round(metrics.get("train_runtime", elapsed), 2),
        "steps_per_second": metrics.get("train_steps_per_second"),
        "samples_per_second": metrics.get("train_samples_per_second"),
        "tokens_seen": tokens_seen,
        "tokens_per_second": round(tokens_this_run / elapsed, 1) if elapsed and tokens_this_run else None,
        "resumed_from": Path(resume_from).name if resume_from else None,
    }


def write_summary(trainer: Any, output: str, summary: dict) -> None:
    if trainer.is_world_process_zero():
        (Path(output) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def tokens_at_start():
    """A callback that records the tokens already seen when training starts (non-zero after --resume)."""
    from transformers import TrainerCallback

    class TokensAtStart(TrainerCallback):
        tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.tokens = int(state.num_input_tokens_seen or 0)

    return TokensAtStart()


def perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return round(math.exp(loss), 3) if loss < 50 else float("inf")


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def plain(args: Any) -> dict[str, Any]:
    """The arguments as JSON values (enums as their flag values)."""
    return {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(args).items()}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
