"""Training throughput and peak memory: LoRA vs QLoRA (nf4) vs full fine-tuning, and preference tuning
(DPO, ORPO), same model shape and data.

    python -m tools.bench.training                     # tiny model, CPU or GPU (a minute on 2 cores)
    python -m tools.bench.training --shape qwen2.5-1.5b --seq-len 1024 --batch-size 4     # on a GPU
    python -m tools.bench.training --shape qwen2.5-1.5b --methods dpo-lora dpo-qlora-nf4 orpo-lora   # dpo's figures

A script, not a test. Each method runs in its own process (so each peak memory
is its own) through the same ``SFTTrainer`` setup ``sft`` uses, on random token
ids with the loss on the second half of each sequence, for ``--steps`` optimizer
steps; the first step (allocation, kernel selection) is left out of tokens/s. The preference methods
run ``dpo``'s own trainer (``training.dpo.build_trainer``) on random-word pairs whose prompt and replies
each fill about half of ``--seq-len``; a step trains on two sequences per pair (prompt + chosen, prompt +
rejected), so their tokens/s counts both sequences' tokens (as ``dpo`` tokenizes them, chat template
included), and DPO's reference pass (the adapter switched off) is part of the time.
``qwen2.5-1.5b`` is a randomly initialised model of Qwen2.5-1.5B-Instruct's
exact shape (speed and memory depend on the shape, not the weights), so nothing
is downloaded. Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and
the process's peak resident set size on a CPU (which includes Python and
PyTorch themselves, measured before the model loads and shown as ``baseline``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from tools.bench.llm.models import SHAPES  # Qwen2.5-1.5B-Instruct's config.json: what sets speed and memory

logger = logging.getLogger(__name__)

METHODS = {  # name -> (quantization, lora_r)
    "lora": ("none", 16),
    "qlora-nf4": ("nf4", 16),
    "full": ("none", 0),
}
PREFERENCE_METHODS = {  # name -> (quantization, lora_r, --loss)
    "dpo-lora": ("none", 16, "dpo"),
    "dpo-qlora-nf4": ("nf4", 16, "dpo"),
    "orpo-lora": ("none", 16, "orpo"),
}
DEFAULT_METHODS = ["lora", "qlora-nf4", "full"]


def build_model(shape: str, folder: Path) -> Path:
    """A random model of the given shape with the tiny (ChatML) tokenizer, saved to ``folder``."""
    from tools.testing.tiny_model import build_tiny_model, build_tokenizer

    if shape == "tiny":
        return build_tiny_model(folder, seed=0)
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(**SHAPES[shape], bos_token_id=0, eos_token_id=2, pad_token_id=0)
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def random_dataset(vocab_size: int, examples: int, seq_len: int, seed: int = 0):
    import torch
    from datasets import Dataset

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size, (examples, seq_len), generator=generator).tolist()
    mask = [0] * (seq_len // 2) + [1] * (seq_len - seq_len // 2)
    return Dataset.from_dict({"input_ids": ids, "assistant_masks": [mask] * examples})


def random_pairs(model_dir: str, pairs: int, seq_len: int, seed: int = 0) -> list[dict]:
    """Preference pairs of random words: prompt + either reply just under ``seq_len`` tokens, chat template included."""
    import random

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    words = [w for w in (tokenizer.decode([i]).strip() for i in range(3, tokenizer.vocab_size)) if w.isalpha()]
    rng = random.Random(seed)

    def text(tokens: int) -> str:
        chosen: list[str] = []
        while len(tokenizer(" ".join(chosen), add_special_tokens=False).input_ids) < tokens:
            chosen.append(rng.choice(words))
        return " ".join(chosen)

    part = seq_len // 2 - 32  # room for the chat template's tokens and the last word's overshoot: nothing is cut
    return [{"prompt": [{"role": "user", "content": text(part)}],
             "chosen": [{"role": "assistant", "content": text(part)}],
             "rejected": [{"role": "assistant", "content": text(part)}]} for _ in range(pairs)]


def build_method_trainer(method: str, model_dir: str, output: str, steps: int, seq_len: int, batch_size: int,
                         callbacks: list):
    """(the trainer, tokens one step trains on) for one method: ``sft``'s or ``dpo``'s own trainer."""
    common = dict(model=model_dir, data="-", output=output, max_steps=steps, batch_size=batch_size,
                  gradient_accumulation_steps=1, max_length=seq_len, report_to="none", save_steps=10**6,
                  logging_steps=10**6)
    if method in PREFERENCE_METHODS:
        from training.config import DPOArgs
        from training.dpo import build_trainer

        from training.dpo import pair_stats
        from training.modeling import load_tokenizer

        quantization, lora_r, loss = PREFERENCE_METHODS[method]
        args = DPOArgs(**common, quantization=quantization, lora_r=lora_r, loss=loss)
        pairs = random_pairs(model_dir, steps * batch_size, seq_len)
        # The tokens the steps train on, counted as dpo tokenizes them: both sequences of each pair.
        stats = pair_stats(load_tokenizer(model_dir), pairs, seq_len, "random pairs")
        if stats["cut"]:
            raise RuntimeError(f"{stats['cut']} random pairs are longer than --seq-len {seq_len}")
        tokens = stats["tokens"]
        return build_trainer(args, pairs=(pairs, None), callbacks=callbacks), tokens / steps
    from transformers import AutoConfig

    from training.config import SFTArgs
    from training.sft import build_trainer

    quantization, lora_r = METHODS[method]
    args = SFTArgs(**common, quantization=quantization, lora_r=lora_r)
    data = random_dataset(AutoConfig.from_pretrained(model_dir).vocab_size, steps * batch_size, seq_len)
    return build_trainer(args, datasets=(data, None), callbacks=callbacks), batch_size * seq_len


def worker(method: str, model_dir: str, steps: int, seq_len: int, batch_size: int, threads: int = 0) -> dict:
    """One method's measurement, in this process."""
    import torch
    from transformers import TrainerCallback

    if threads:
        torch.set_num_threads(threads)

    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with tempfile.TemporaryDirectory() as output:
        times: list[float] = []

        class Clock(TrainerCallback):
            def on_step_end(self, *_, **__):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                times.append(time.perf_counter())

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer, tokens_per_step = build_method_trainer(method, model_dir, output, steps, seq_len, batch_size,
                                                        [Clock()])
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        trainer.train()
    measured = len(times) - 1
    seconds = times[-1] - times[0] if measured > 0 else float("nan")
    result = {
        "method": method,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available()
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} PyTorch threads)",
        "steps_measured": measured,
        "tokens_per_second": round(measured * tokens_per_step / seconds, 1) if measured > 0 else None,
        "steps_per_second": round(measured / seconds, 3) if measured > 0 else None,
        "trainable_parameters": trainable,
    }
    if torch.cuda.is_available():
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    else:
        result["peak_memory_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30, 2)
        result["baseline_memory_gib"] = round(baseline_rss / 2**30, 2)
    return result


def render(results: list[dict], settings: dict) -> str:
    cpu = "baseline_memory_gib" in results[0]
    header = "| method | tokens/s | steps/s | peak memory (GiB) |" + (" baseline (GiB) |" if cpu else "")
    lines = [f"{settings['shape']} shape, sequence length {settings['seq_len']}, batch {settings['batch_size']}, "
             f"{settings['steps']} steps, on {results[0]['device']}:", "", header,
             "| --- | ---: | ---: | ---: |" + (" ---: |" if cpu else "")]
    for r in results:
        lines.append(f"| {r['method']} | {r['tokens_per_second']} | {r['steps_per_second']} | "
                     f"{r['peak_memory_gib']} |" + (f" {r['baseline_memory_gib']} |" if cpu else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["tiny", "qwen2.5-1.5b"], default="tiny", help="Model shape.")
    parser.add_argument("--methods", nargs="+", choices=[*METHODS, *PREFERENCE_METHODS], default=DEFAULT_METHODS,
                        help="What to run (default: the three sft methods; dpo-lora, dpo-qlora-nf4 and orpo-lora "
                             "run `dpo`'s trainer).")
    parser.add_argument("--steps", type=int, default=10, help="Optimizer steps per method (the first is warm-up).")
    parser.add_argument("--seq-len", type=int, default=512, help="Tokens per sequence.")
    parser.add_argument("--batch-size", type=int, default=4, help="Sequences per step.")
    parser.add_argument("--threads", type=int, default=0,
                        help="PyTorch CPU threads (0: PyTorch's default, one per core). On a busy machine, 1 "
                             "is often fastest for the tiny model.")
    parser.add_argument("--output", help="Also write the results as JSON here.")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.build:  # in a process of its own: a child inherits its parent's peak memory (ru_maxrss)
        build_model(args.shape, Path(args.model_dir))
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, args.model_dir, args.steps, args.seq_len, args.batch_size,
                                args.threads)))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        subprocess.run([sys.executable, "-m", "tools.bench.training", "--build", "--shape", args.shape,
                        "--model-dir", str(model_dir)], check=True)
        for method in args.methods:
            command = [sys.executable, "-m", "tools.bench.training", "--worker", method, "--model-dir", str(model_dir),
                       "--steps", str(args.steps), "--seq-len", str(args.seq_len), "--batch-size",
                       str(args.batch_size), "--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{method} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{method}: {results[-1]}", file=sys.stderr)
    settings = {"shape": args.shape, "seq_len": args.seq_len, "batch_size": args.batch_size, "steps": args.steps,
                "threads": args.threads}
    print(render(results, settings))
    if args.output:
        Path(args.output).write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
