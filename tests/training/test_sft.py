"""`sft` on the tiny model: loss logged and falling, LoRA trained and base frozen, assistant-only loss, resume, QLoRA.

One LoRA run (8 steps, checkpoints at 4 and 8) is shared by the tests of this module.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.training.conftest import read_jsonl
from training import sft

pytestmark = pytest.mark.slow

STEPS = 8


def sft_argv(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--data", str(data), "--output", str(output), "--max-steps", str(STEPS),
            "--batch-size", "4", "--gradient-accumulation-steps", "1", "--learning-rate", "1e-2", "--lora-r", "8",
            "--lora-alpha", "16", "--logging-steps", "1", "--eval-steps", "4", "--max-length", "256", "--seed", "0",
            *extra]


def run_sft(argv: list[str]) -> SimpleNamespace:
    """Run `sft` through its command line, keeping the trainer and a copy of the weights before training."""
    captured = SimpleNamespace()
    build = sft.build_trainer

    def capturing(args, **kwargs):
        trainer = build(args, **kwargs)
        captured.trainer = trainer
        captured.before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
        return trainer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sft, "build_trainer", capturing)
        captured.code = sft.main(argv)
    return captured


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir, dataset_dir):
    output = tmp_path_factory.mktemp("sft") / "lora"
    run = run_sft(sft_argv(tiny_model_dir, dataset_dir, output))
    assert run.code == 0
    run.output = output
    run.summary = json.loads((output / sft.SUMMARY_FILE).read_text())
    return run


def lora_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "adapter_model.safetensors")


def test_training_loss_is_logged_and_goes_down(lora_run):
    losses = [entry["loss"] for entry in lora_run.summary["loss_history"]]
    assert len(losses) == STEPS
    assert all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.1, losses
    evaluation = lora_run.summary["eval"]
    assert evaluation["eval_loss"] < evaluation["eval_loss_before"]
    assert evaluation["perplexity"] == pytest.approx(math.exp(evaluation["eval_loss"]), rel=1e-3)
    assert lora_run.summary["train"]["global_step"] == STEPS
    tokens = lora_run.summary["data"]["train_tokens"]
    assert tokens["examples"] == 9 and 0 < tokens["assistant_tokens"] < tokens["tokens"]
    assert lora_run.summary["train"]["tokens_seen"] >= tokens["tokens"]  # 8 steps of 4 > one epoch of 9


def test_tensorboard_event_file_holds_the_training_loss(lora_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    event_files = sorted((lora_run.output / "runs").rglob("events.out.tfevents.*"))
    assert event_files
    scalars = {}
    for path in event_files:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(accumulator.Scalars(tag))
    assert len(scalars["train/loss"]) == STEPS
    assert [event.step for event in scalars["train/loss"]] == list(range(1, STEPS + 1))
    assert "eval/loss" in scalars


def test_lora_weights_change_and_base_weights_do_not(lora_run):
    after = dict(lora_run.trainer.model.named_parameters())
    lora = [name for name in after if "lora_" in name]
    base = [name for name in after if "lora_" not in name]
    assert lora and base
    assert all(not torch.equal(lora_run.before[name], after[name].detach()) for name in lora)
    assert all(torch.equal(lora_run.before[name], after[name].detach()) for name in base)
    assert not any(after[name].requires_grad for name in base)
    # The saved adapter holds exactly the trained LoRA weights, and nothing of the base.
    saved = lora_state(lora_run.output)
    assert saved and all("lora_" in key for key in saved)
    trained = {name: p for name, p in after.items() if "lora_" in name}
    assert len(saved) == len(trained)
    for key, tensor in saved.items():
        match = [p for name, p in trained.items() if name.replace(".default", "").endswith(key.split("model.", 1)[1])]
        assert len(match) == 1 and torch.equal(match[0].detach(), tensor)


def test_the_loss_is_computed_on_assistant_tokens_only(lora_run, dataset_dir):
    trainer = lora_run.trainer
    tokenizer = trainer.processing_class
    conversations = [row["messages"] for row in read_jsonl(dataset_dir / "train.jsonl")]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    trained_texts = []
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        learned = ids[labels != -100]
        assert torch.equal(labels[labels != -100], learned)
        trained_texts.append(tokenizer.decode(learned))
    replies = sorted("".join(m["content"] + "<|im_end|>" for m in c if m["role"] == "assistant")
                     for c in conversations)
    assert sorted(trained_texts) == replies  # every reply token, and no system, user or template token
    # The model's loss on this batch is the mean over exactly those tokens.
    model = trainer.model
    model.eval()
    with torch.no_grad():
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                                            ignore_index=-100, reduction="sum")
    assert float(output.loss) == pytest.approx(float(nll) / int((targets != -100).sum()), rel=1e-4)


def test_resume_continues_from_the_checkpoint_to_the_same_weights(lora_run, tiny_model_dir, dataset_dir, tmp_path):
    assert (lora_run.output / "checkpoint-4").is_dir() and (lora_run.output / f"checkpoint-{STEPS}").is_dir()
    interrupted = tmp_path / "interrupted"
    shutil.copytree(lora_run.output / "checkpoint-4", interrupted / "checkpoint-4")
    resumed = run_sft(sft_argv(tiny_model_dir, dataset_dir, interrupted, "--resume"))
    assert resumed.code == 0
    summary = json.loads((interrupted / sft.SUMMARY_FILE).read_text())
    assert summary["train"]["resumed_from"] == "checkpoint-4"
    assert summary["train"]["global_step"] == STEPS
    steps = [entry["step"] for entry in summary["loss_history"]]
    assert steps == list(range(1, STEPS + 1))  # steps 1-4 from the checkpoint's state, 5-8 trained now
    full, continued = lora_state(lora_run.output), lora_state(interrupted)
    assert full.keys() == continued.keys()
    for key in full:
        torch.testing.assert_close(continued[key], full[key], rtol=1e-4, atol=1e-5)


def test_a_new_run_will_not_mix_into_old_checkpoints(lora_run, tiny_model_dir, dataset_dir, tmp_path, capsys):
    assert sft.main(sft_argv(tiny_model_dir, dataset_dir, lora_run.output)) == 2
    assert "already holds checkpoints (checkpoint-8); pass --resume" in capsys.readouterr().err
    assert sft.main(sft_argv(tiny_model_dir, dataset_dir, tmp_path / "fresh", "--resume")) == 2
    assert "has no checkpoint-N folder to continue from" in capsys.readouterr().err


def test_missing_data_and_too_short_max_length_are_clear_errors(tiny_model_dir, dataset_dir, tmp_path, capsys):
    assert sft.main(sft_argv(tiny_model_dir, tmp_path, tmp_path / "o")) == 2
    assert "no train.jsonl; run `python -m training prepare" in capsys.readouterr().err
    assert sft.main(sft_argv(tiny_model_dir, dataset_dir, tmp_path / "o", "--max-length", "8")) == 2
    assert "no example has a reply within --max-length 8 tokens" in capsys.readouterr().err


def test_qlora_nf4_trains_on_the_cpu(tiny_model_dir, dataset_dir, tmp_path):
    from bitsandbytes.nn import Linear4bit

    output = tmp_path / "qlora"
    run = run_sft(sft_argv(tiny_model_dir, dataset_dir, output, "--quantization", "nf4", "--max-steps", "3",
                           "--report-to", "none"))
    assert run.code == 0
    modules = list(run.trainer.model.modules())
    assert sum(isinstance(m, Linear4bit) for m in modules) == 14  # 7 projections x 2 layers, 4-bit
    after = dict(run.trainer.model.named_parameters())
    assert all(not torch.equal(run.before[n], p.detach()) for n, p in after.items() if "lora_" in n)
    summary = json.loads((output / sft.SUMMARY_FILE).read_text())
    assert summary["method"] == "QLoRA (nf4)"
    assert all(math.isfinite(entry["loss"]) for entry in summary["loss_history"])
    assert (output / "adapter_model.safetensors").is_file()
    assert not (output / "runs").exists()  # --report-to none

