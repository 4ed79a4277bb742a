"""Every command's configuration: one dataclass each, parsed from flags and an optional ``--config FILE.yaml``.

As in TRL's scripts, the fields carry their help text in ``metadata``, the
values of a YAML file become the defaults and flags override them, and
``__post_init__`` rejects bad values with a sentence that says what to change.
Flags are spelled with dashes or underscores (``--max-steps`` = ``--max_steps``);
YAML keys use underscores (``max_steps: 200``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from ridgeline.paths import REPO_ROOT  # noqa: F401 (training.config.REPO_ROOT, as before)
from ridgeline.paths import CATALOG_FILE as DEFAULT_CATALOG
from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS
from ridgeline.settings import ConfigError, parse_enum
from ridgeline.shapes import ORDER_ID as DEFAULT_ORDER_ID_PATTERN

logger = logging.getLogger(__name__)


class _Choice(str, Enum):
    def __str__(self) -> str:  # `--help` shows "none", not "Quantization.NONE"
        return self.value


class Quantization(_Choice):
    NONE = "none"
    INT8 = "int8"
    NF4 = "nf4"


class ReportTo(_Choice):
    TENSORBOARD = "tensorboard"
    WANDB = "wandb"
    NONE = "none"


class Redact(_Choice):
    ALL = "all"  # every input: exports from other tools hold the same personal data as the tracker store
    TRACKER = "tracker"  # only conversations read from the tracker store
    NONE = "none"


class Dtype(_Choice):
    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


def _positive(value: float, flag: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{flag} must be {'zero or more' if allow_zero else 'more than zero'}, got {value}.")


@dataclass
class PrepareArgs:
    """``python -m training prepare``: conversations in, ``train.jsonl`` / ``validation.jsonl`` out."""

    input: list[str] = field(
        metadata={
            "help": "Files, folders or SQL URLs to read: OpenAI chat JSONL, ShareGPT .json/.jsonl, SQuAD v1.1/v2.0 "
            ".json, CSV (a `text` column, or `prompt` + `response` columns), Rasa tracker stores (sqlite:///rasa.db, "
            "postgresql+psycopg://user:pw@host/rasa), and preference pairs for `dpo`: TRL JSONL (`prompt`, "
            "`chosen`, `rejected`, or whole `chosen`/`rejected` conversations; `review export-preferences` writes "
            "it) and AutoTrain CSV (`text` + `rejected_text`, optionally with `prompt`; or `prompt` + `chosen` + "
            "`rejected`)."
        }
    )
    output: str = field(metadata={"help": "Folder to write train.jsonl, validation.jsonl, stats.json and, when the "
                                  "inputs hold preference pairs, preferences_train.jsonl and "
                                  "preferences_validation.jsonl to."})
    val_fraction: float = field(default=0.1, metadata={"help": "Share of conversations (and of preference pairs) "
                                                       "held out for validation."})
    seed: int = field(default=42, metadata={"help": "Seed of the train/validation split."})
    redact: Redact = field(
        default=Redact.ALL,
        metadata={"help": "Replace emails, phone numbers, card and order numbers with placeholders in: all "
                  "(every input, the default), tracker (tracker-store conversations only) or none (warns: a "
                  "fine-tuned model can repeat what it trained on)."},
    )
    order_id_pattern: str = field(
        default=DEFAULT_ORDER_ID_PATTERN, metadata={"help": "Regular expression of the store's order numbers."}
    )
    store_facts: str = field(
        default=str(DEFAULT_STORE_FACTS),
        metadata={"help": "The store facts file the action server uses (STORE_FACTS_PATH); its system prompt "
                  "opens every conversation."},
    )
    system_prompt_file: str | None = field(
        default=None, metadata={"help": "A text file whose content replaces the store's system prompt."}
    )
    keep_system: bool = field(
        default=False,
        metadata={"help": "Keep a conversation's own system message instead of replacing it with the assistant's."},
    )
    exclude_responses: list[str] = field(
        default_factory=lambda: ["utter_llm_unavailable"],
        metadata={"help": "Tracker-store bot responses (utter_action names) that are not worth learning, such as "
                  "the apology sent when the LLM was down; the turn they answer is dropped."},
    )
    skip_invalid: bool = field(
        default=False,
        metadata={"help": "Skip invalid rows (counted and listed in stats.json) instead of stopping at the first."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.input, str):
            self.input = [self.input]
        if not self.input:
            raise ConfigError("--input needs at least one file, folder or SQL URL.")
        self.redact = parse_enum(Redact, self.redact, "--redact")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be at least 0 and below 1 (e.g. 0.1), got {self.val_fraction}.")
        import re

        try:
            re.compile(self.order_id_pattern)
        except re.error as exc:
            raise ConfigError(f"--order-id-pattern is not a valid regular expression: {exc}.") from None


@dataclass
class TrainingArgs:
    """The settings every training command shares (``sft``, ``dpo``): model, data, adapters, schedule, logging.

    One definition, so a flag means the same in each command; a command's own class
    adds its fields, re-words a help text where the data differ, and sets its
    default learning rates in ``lora_learning_rate`` / ``full_learning_rate``.
    """

    lora_learning_rate = 2e-4  # class attributes, not flags: the --learning-rate defaults
    full_learning_rate = 2e-5

    model: str = field(metadata={"help": "Base model: a Hugging Face hub id or a local directory."})
    data: str = field(metadata={"help": "Folder written by `prepare` (train.jsonl, validation.jsonl)."})
    output: str = field(metadata={"help": "Folder for checkpoints, logs and the final adapter (or model)."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use --epochs)."})
    epochs: float = field(default=3.0, metadata={"help": "Passes over the training data (when --max-steps is -1)."})
    quantization: Quantization = field(
        default=Quantization.NONE,
        metadata={"help": "Base weights in: none (16/32-bit; LoRA), int8, or nf4 (4-bit QLoRA via bitsandbytes)."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank; 0 trains every weight (full fine-tuning)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Modules that get LoRA adapters: all-linear, or names such as q_proj v_proj."},
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate. Default: 2e-4 with LoRA, 2e-5 for full fine-tuning."}
    )
    batch_size: int = field(default=4, metadata={"help": "Conversations per device per step."})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "Batches summed into one optimizer step."})
    max_length: int = field(
        default=2048, metadata={"help": "Longest tokenized conversation (the system prompt included); longer ones "
                                "are cut."}
    )
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of the steps that warm the learning rate up."})
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every N steps."})
    eval_steps: int = field(default=50, metadata={"help": "Evaluate on the validation split every N steps."})
    save_steps: int | None = field(default=None, metadata={"help": "Checkpoint every N steps (default: eval_steps)."})
    save_total_limit: int = field(default=3, metadata={"help": "Checkpoints kept; older ones are deleted."})
    report_to: ReportTo = field(
        default=ReportTo.TENSORBOARD,
        metadata={"help": "Where metrics go: tensorboard (OUTPUT/runs), wandb (set WANDB_PROJECT) or none."},
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the latest checkpoint in --output."})
    gradient_checkpointing: bool = field(
        default=True, metadata={"help": "Recompute activations in the backward pass: less memory, ~30%% slower."}
    )
    dtype: Dtype = field(
        default=Dtype.AUTO,
        metadata={"help": "Compute dtype: auto (bfloat16 on GPUs that have it, float32 on CPU), float32, "
                  "bfloat16, float16."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of weight initialisation, dropout and data order."})

    def __post_init__(self) -> None:
        self.quantization = parse_enum(Quantization, self.quantization, "--quantization")
        self.report_to = parse_enum(ReportTo, self.report_to, "--report-to")
        self.dtype = parse_enum(Dtype, self.dtype, "--dtype")
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = [self.lora_target_modules]
        _positive(self.lora_r, "--lora-r", allow_zero=True)
        if self.quantization is not Quantization.NONE and self.lora_r == 0:
            raise ConfigError(
                f"--quantization {self.quantization.value} freezes the base weights in "
                f"{self.quantization.value}, so it needs LoRA: set --lora-r above 0 (e.g. 16), or use "
                "--quantization none for full fine-tuning."
            )
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"--max-steps must be a positive number of steps, or -1 to use --epochs; got "
                              f"{self.max_steps}.")
        if self.max_steps == -1:
            _positive(self.epochs, "--epochs")
        for flag, value in (("--batch-size", self.batch_size), ("--max-length", self.max_length),
                            ("--gradient-accumulation-steps", self.gradient_accumulation_steps),
                            ("--logging-steps", self.logging_steps), ("--eval-steps", self.eval_steps),
                            ("--save-total-limit", self.save_total_limit)):
            _positive(value, flag)
        if self.save_steps is None:
            self.save_steps = self.eval_steps
        _positive(self.save_steps, "--save-steps")
        if self.learning_rate is None:
            self.learning_rate = self.lora_learning_rate if self.lora_r else self.full_learning_rate
        _positive(self.learning_rate, "--learning-rate")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"--lora-dropout must be at least 0 and below 1, got {self.lora_dropout}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"--warmup-ratio must be at least 0 and below 1, got {self.warmup_ratio}.")


@dataclass
class SFTArgs(TrainingArgs):
    """``python -m training sft``: supervised fine-tuning, loss on the assistant's tokens only."""


class PreferenceLoss(_Choice):
    DPO = "dpo"  # TRL's sigmoid loss: -log sigmoid(beta * (chosen log-ratio - rejected log-ratio))
    IPO = "ipo"  # squared loss towards a fixed margin 1 / (2 beta): does not push the margin on forever
    ORPO = "orpo"  # SFT loss + beta * odds-ratio loss, no reference model


@dataclass
class DPOArgs(TrainingArgs):
    """``python -m training dpo``: preference tuning (DPO, IPO or ORPO) on chosen/rejected reply pairs."""

    # Preference tuning only has to move the log-probabilities of two replies apart, from a model that already
    # answers well: steps of sft's size overshoot (the margin keeps growing while the replies lose fluency).
    lora_learning_rate = 5e-5
    full_learning_rate = 5e-6

    model: str = field(metadata={"help": "The model to tune: for dpo and ipo an sft-merged folder (`python -m "
                                 "training merge`), which is also the reference; for orpo an instruct model (hub "
                                 "id or directory) will do."})
    data: str = field(metadata={"help": "Folder written by `prepare` with a preference input "
                                "(preferences_train.jsonl, preferences_validation.jsonl)."})
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate. Default: 5e-5 with LoRA, 5e-6 for full fine-tuning; a tenth of "
                  "sft's, because preference tuning starts from a model that already answers well and only moves "
                  "the chosen and rejected replies' log-probabilities apart: larger steps overshoot, the margin "
                  "keeps growing while the replies lose fluency. LoRA's low-rank update needs about ten times the "
                  "full rate for the same change."},
    )
    batch_size: int = field(default=4, metadata={"help": "Preference pairs per device per step (each pair is two "
                                                 "sequences: prompt + chosen, prompt + rejected)."})
    max_length: int = field(
        default=2048, metadata={"help": "Longest tokenized prompt + reply (the system prompt included); longer ones "
                                "are cut at the end, and pairs whose prompt alone is this long are left out."}
    )
    loss: PreferenceLoss = field(
        default=PreferenceLoss.DPO,
        metadata={"help": "dpo (TRL's sigmoid DPO loss against a reference: the base with the adapter switched off, "
                  "or with --lora-r 0 a second, frozen copy of --model), ipo (IPO's squared loss: stops at a margin "
                  "instead of pushing it on; steadier on small or noisy pair sets), or orpo (ORPO: an SFT loss on "
                  "prompt + chosen reply, which TRL takes over the whole sequence, plus an odds-ratio term; NO "
                  "reference model: one pass can replace sft + dpo)."},
    )
    beta: float = field(
        default=0.1,
        metadata={"help": "dpo: how far the model may move from the reference (higher keeps it closer); ipo: the "
                  "regularisation tau (target margin 1/(2 beta)); orpo: the weight lambda of the odds-ratio term "
                  "next to the SFT loss."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.loss = parse_enum(PreferenceLoss, self.loss, "--loss")
        _positive(self.beta, "--beta")


def default_eval_output(model: str, adapter: str | None) -> str:
    """Where `evaluate` writes its reports without --output: ADAPTER/eval, or MODEL/eval for a local model."""
    if adapter:
        return str(Path(adapter) / "eval")
    if Path(model).is_dir():
        return str(Path(model) / "eval")
    raise ConfigError("--output is needed when --model is a hub id and there is no --adapter.")


@dataclass
class EvaluateArgs:
    """``python -m training evaluate``: validation loss, perplexity and sample replies, base vs adapter."""

    model: str = field(metadata={"help": "Base model (hub id or directory), or a merged model directory."})
    data: str = field(metadata={"help": "Folder written by `prepare`; its validation.jsonl (loss, perplexity, "
                                "replies) and preferences_validation.jsonl (preference accuracy) are evaluated, "
                                "whichever exist."})
    adapter: str | None = field(
        default=None, metadata={"help": "LoRA adapter folder written by `sft` or `dpo`; the report then compares "
                                "base and fine-tuned side by side."}
    )
    output: str | None = field(
        default=None, metadata={"help": "Folder for report.md and report.json (default: ADAPTER/eval, or "
                                "MODEL/eval for a local model without adapter)."}
    )
    split: str = field(default="validation", metadata={"help": "Which files of --data to evaluate (validation or "
                                                         "train)."})
    max_examples: int | None = field(default=None, metadata={"help": "Evaluate the loss on at most N conversations."})
    max_pairs: int | None = field(
        default=None, metadata={"help": "Measure the preference accuracy on at most N pairs of "
                                "preferences_<split>.jsonl."}
    )
    generations: int = field(default=5, metadata={"help": "Conversations whose last reply is generated for the "
                                                  "report."})
    max_new_tokens: int = field(default=128, metadata={"help": "Longest generated reply (greedy decoding)."})
    max_length: int = field(default=2048, metadata={"help": "Longest tokenized conversation; longer ones are cut."})
    quantization: Quantization = field(
        default=Quantization.NONE, metadata={"help": "Load the base weights in none, int8 or nf4 (as served)."}
    )
    dtype: Dtype = field(default=Dtype.AUTO, metadata={"help": "auto, float32, bfloat16 or float16."})

    def __post_init__(self) -> None:
        self.quantization = parse_enum(Quantization, self.quantization, "--quantization")
        self.dtype = parse_enum(Dtype, self.dtype, "--dtype")
        if self.split not in {"validation", "train"}:
            raise ConfigError(f"--split must be validation or train, got {self.split!r}.")
        if self.max_examples is not None:
            _positive(self.max_examples, "--max-examples")
        if self.max_pairs is not None:
            _positive(self.max_pairs, "--max-pairs")
        _positive(self.generations, "--generations", allow_zero=True)
        _positive(self.max_new_tokens, "--max-new-tokens")
        _positive(self.max_length, "--max-length")
        if self.output is None:
            self.output = default_eval_output(self.model, self.adapter)


@dataclass
class GroundingArgs:
    """``python -m training evaluate --grounding``: how often replies cite a source, invent a fact, decline."""

    model: str = field(metadata={"help": "Base model (hub id or directory), or a merged model directory."})
    data: str = field(metadata={"help": "validation.jsonl written by `python -m training synthesize` (or its "
                                "folder): each conversation's last user message is answered."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder written by `sft`; the report "
                                                          "then compares base and fine-tuned."})
    output: str | None = field(default=None, metadata={"help": "Folder for grounding.md and grounding.json "
                                                        "(default: ADAPTER/eval, or MODEL/eval for a local model)."})
    catalog: str = field(default=str(DEFAULT_CATALOG), metadata={"help": "The catalog the data was synthesized from."})
    store_facts: str = field(default=str(DEFAULT_STORE_FACTS), metadata={"help": "The store facts file (store name and "
                                                                 "support email of a decline)."})
    limit: int | None = field(default=None, metadata={"help": "Answer at most N conversations."})
    max_new_tokens: int = field(default=160, metadata={"help": "Longest generated reply (greedy decoding)."})
    quantization: Quantization = field(
        default=Quantization.NONE, metadata={"help": "Load the base weights in none, int8 or nf4 (as served)."}
    )
    dtype: Dtype = field(default=Dtype.AUTO, metadata={"help": "auto, float32, bfloat16 or float16."})

    def __post_init__(self) -> None:
        self.quantization = parse_enum(Quantization, self.quantization, "--quantization")
        self.dtype = parse_enum(Dtype, self.dtype, "--dtype")
        if self.limit is not None:
            _positive(self.limit, "--limit")
        _positive(self.max_new_tokens, "--max-new-tokens")
        if Path(self.data).is_dir():
            self.data = str(Path(self.data) / "validation.jsonl")
        if not Path(self.data).is_file():
            raise ConfigError(f"--data {self.data}: no such file; run `python -m training synthesize --output DIR` "
                              "and pass DIR/validation.jsonl.")
        if self.output is None:
            self.output = default_eval_output(self.model, self.adapter)


@dataclass
class MergeArgs:
    """``python -m training merge``: base + adapter -> one model folder the LLM service serves as is."""

    model: str = field(metadata={"help": "The base model the adapter was trained on (hub id or directory)."})
    adapter: str = field(metadata={"help": "LoRA adapter folder written by `sft` or `dpo`."})
    output: str = field(metadata={"help": "Folder for the merged model (safetensors, tokenizer, chat template, "
                                  "README.md model card)."})
    dtype: Dtype = field(
        default=Dtype.AUTO, metadata={"help": "dtype of the merged weights: auto (the base model's own), "
                                      "float32, bfloat16 or float16."}
    )
    eval_report: str | None = field(
        default=None, metadata={"help": "report.json from `evaluate` for the model card (default: ADAPTER/eval/"
                                "report.json when it exists)."}
    )

    def __post_init__(self) -> None:
        self.dtype = parse_enum(Dtype, self.dtype, "--dtype")
        if Path(self.output).resolve() == Path(self.adapter).resolve():
            raise ConfigError("--output must differ from --adapter; choose a new folder for the merged model.")


T = TypeVar("T")
R = TypeVar("R")


def parse(cls: type[T], argv: Sequence[str] | None, prog: str, description: str) -> T:
    """Flags (and ``--config FILE.yaml`` as defaults) -> ``cls``; raise ``ConfigError`` for bad values.

    ``--help`` and missing required flags exit through argparse (status 2), as usual.
    """
    import sys

    from trl import TrlParser

    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args):
            raise ConfigError("--config needs a YAML file: --config my-run.yaml.")
        path = Path(args[index + 1])
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file.")
    parser = TrlParser(
        dataclass_types=[cls], prog=prog, description=description.replace("``", ""),
        epilog="Any flag can also be set in --config FILE.yaml (keys with underscores, e.g. max_steps: 200); "
        "flags given here override the file.",
    )
    try:
        (parsed,) = parser.parse_args_and_config(args)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # __post_init__ of HfArgumentParser types, unknown YAML keys
        raise ConfigError(str(exc).strip().splitlines()[0]) from exc
    except Exception as exc:  # a YAML syntax error
        if type(exc).__module__.startswith("yaml"):
            raise ConfigError(f"--config: the YAML file could not be read: {exc}") from exc
        raise
    return parsed


def run_command(cls: type[T], argv: Sequence[str] | None, prog: str, description: str,
                work: Callable[[T], R], data_errors: tuple[type[Exception], ...] = ()
                ) -> tuple[int, T | None, R | None]:
    """Parse ``argv`` into ``cls`` and run ``work`` on it: ``(0, the arguments, its result)``, or
    ``(exit status, the arguments or None, None)`` once the user has been told why: a
    ``ConfigError`` (status 2); ``--help`` or a flag argparse refused (argparse's own status and
    message); one of ``data_errors`` raised by ``work``, malformed input data (status 1, with
    ``file:line: what is wrong``)."""
    import sys

    try:
        args = parse(cls, argv, prog, description)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2, None, None
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 2), None, None
    try:
        return 0, args, work(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2, None, None
    except data_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1, args, None