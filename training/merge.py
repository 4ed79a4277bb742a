"""``python -m training merge``: fold a LoRA adapter into its base model; the LLM service serves the result as is.

    python -m training merge --model Qwen/Qwen2.5-1.5B-Instruct --adapter var/sft --output models/ridgeline
    LLM_MODEL=models/ridgeline make run

Loads the base in its own dtype (never quantized: a QLoRA adapter is merged
into the full-precision base it was trained against), merges, checks that the
merged model's logits equal base + adapter on a probe prompt, and writes
safetensors weights, the generation config, the tokenizer with its chat
template, and a README.md model card with the data stats, hyper-parameters and
evaluation figures (from ``ADAPTER/training_summary.json`` and
``ADAPTER/eval/report.json`` when they exist).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from training import model_card
from training.config import ConfigError, Dtype, MergeArgs, run_command
from training.sft import SUMMARY_FILE

logger = logging.getLogger(__name__)

PROBE = [
    {"role": "system", "content": "You are the support assistant of an outdoor-gear store."},
    {"role": "user", "content": "Which sleeping bag keeps me warm on a cold night in the hills?"},
]
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.25, "float16": 0.05}  # expected rounding of the merged weights


def _probe_logits(model: Any, input_ids: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(input_ids=input_ids).logits.float()


def merge(args: MergeArgs) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    from training.modeling import load_tokenizer

    adapter = Path(args.adapter)
    if not (adapter / "adapter_config.json").is_file():
        if (adapter / "config.json").is_file():
            raise ConfigError(f"--adapter {adapter} is a whole model (trained with --lora-r 0), not an adapter: "
                              "there is nothing to merge; serve it as is with LLM_MODEL.")
        raise ConfigError(f"--adapter {adapter}: no adapter_config.json; pass the folder `sft` wrote.")
    transformers_logging.disable_progress_bar()
    if args.dtype is Dtype.AUTO:
        config = AutoConfig.from_pretrained(args.model)
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    else:
        dtype = getattr(torch, args.dtype.value)
    dtype_name = str(dtype).removeprefix("torch.")

    tokenizer_source = adapter if (adapter / "tokenizer_config.json").is_file() else args.model
    tokenizer = load_tokenizer(str(tokenizer_source))
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
    model = PeftModel.from_pretrained(base, str(adapter))
    model.eval()
    prompt = tokenizer.apply_chat_template(PROBE, tokenize=False, add_generation_prompt=True)
    input_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    expected = _probe_logits(model, input_ids)
    merged = model.merge_and_unload()
    difference = float((_probe_logits(merged, input_ids) - expected).abs().max())
    if difference > TOLERANCE.get(dtype_name, 1e-3):
        if dtype_name == "float32":
            raise ConfigError(f"The merged model's logits differ from base + adapter by {difference:.3g}; is "
                              "--model the base the adapter was trained on?")
        # 16-bit merged weights round W + BA; a large difference is worth a look, not a refusal.
        logger.warning("The merged %s logits differ from base + adapter by %.3g on the probe prompt; compare "
                       "with `python -m training evaluate --model %s`", dtype_name, difference, args.output)

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    merged.config.use_cache = True
    merged.save_pretrained(output)  # model.safetensors (+ index when sharded), config, generation_config
    tokenizer.save_pretrained(output)  # tokenizer files + chat_template.jinja
    summary = _read_json(adapter / SUMMARY_FILE)
    report_path = Path(args.eval_report) if args.eval_report else adapter / "eval" / "report.json"
    if args.eval_report and not report_path.is_file():
        raise ConfigError(f"--eval-report {report_path}: no such file.")
    report = _read_json(report_path)
    info = {"dtype": dtype_name, "max_logit_diff": difference, "output": str(output)}
    card = model_card.render(args.model, str(adapter), summary, report, info)
    (output / "README.md").write_text(card, encoding="utf-8")
    logger.info("Merged %s into %s (%s); max logit difference %.2e", adapter, args.model, dtype_name, difference)
    return info


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    status, args, info = run_command(MergeArgs, argv, "python -m training merge", __doc__.split("\n\n")[0], merge)
    if args is None or info is None:
        return status
    print(f"Wrote the merged model to {info['output']} ({info['dtype']}; merged = base + adapter within "
          f"{info['max_logit_diff']:.1e}). Serve it: LLM_MODEL={info['output']} make run")
    return 0
