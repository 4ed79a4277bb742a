"""`dpo` on the tiny model: DPO and ORPO raise the preference accuracy, the adapter merges and is served,
`evaluate` reports the preference accuracy, and bad flags or data are refused with a sentence.

The pairs have one clear difference in style: every chosen reply is one of the store's own
sentences ("Pitch the tent on flat ground, ..."), every rejected reply two of the tiny corpus's
templated ones ("the stove suits a long trek. my boots keeps wet weather."), with exactly as many
tokens as the chosen reply, so the untrained model has no length to prefer one by.
One DPO run (12 steps, evaluated and checkpointed at 6 and 12) is shared by the tests of this module.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.training.conftest import QA, SHORT_SYSTEM_PROMPT, write_jsonl
from tests.training.test_evaluate_merge import QUESTION, base_plus_adapter, serve_one_reply
from tools.testing.tiny_model import training_corpus
from training import dpo, evaluate, merge, sft
from training.config import ConfigError, DPOArgs, Dtype, SFTArgs
from training.modeling import load_model, load_tokenizer

pytestmark = pytest.mark.slow

STEPS = 12
TRAIN_PAIRS = 24
VALIDATION_PAIRS = 6


def preference_pairs(tokenizer, first: int, count: int, seed: int) -> list[dict]:
    """``count`` pairs in prepare's format, chosen in the store's voice, rejected templated, of equal token length."""
    corpus = training_corpus()
    store_voice = [line for line in corpus if line[0].isupper()]  # "Pitch the tent on flat ground, ..."
    templated = [line for line in corpus if line[0].islower()]  # "the stove weighs less than a long trek."
    rng = random.Random(seed)
    pairs = []
    for index, chosen in enumerate(store_voice[first: first + count]):
        length = len(tokenizer(chosen).input_ids)
        while True:
            rejected = " ".join(rng.sample(templated, 2))
            if len(tokenizer(rejected).input_ids) == length:
                break
        question = QA[(first + index) % len(QA)][0]
        pairs.append({
            "prompt": [{"role": "system", "content": SHORT_SYSTEM_PROMPT}, {"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "source": f"feedback.jsonl:{first + index + 1}",
        })
    return pairs


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A `prepare` output with preference pairs only: 24 for training, 6 for validation."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    root = tmp_path_factory.mktemp("pairs")
    write_jsonl(root / dpo.TRAIN_FILE, preference_pairs(tokenizer, 0, TRAIN_PAIRS, seed=0))
    write_jsonl(root / dpo.VALIDATION_FILE, preference_pairs(tokenizer, TRAIN_PAIRS, VALIDATION_PAIRS, seed=1))
    return root


def dpo_argv(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--data", str(data), "--output", str(output), "--max-steps", str(STEPS),
            "--batch-size", "8", "--gradient-accumulation-steps", "1", "--learning-rate", "5e-3", "--lora-r", "8",
            "--lora-alpha", "16", "--logging-steps", "1", "--eval-steps", "6", "--max-length", "256", "--seed", "0",
            *extra]


def run_dpo(argv: list[str]) -> SimpleNamespace:
    """Run `dpo` through its command line, keeping the trainer and a copy of the weights before training."""
    captured = SimpleNamespace()
    build = dpo.build_trainer

    def capturing(args, *positional, **kwargs):
        trainer = build(args, *positional, **kwargs)
        captured.trainer = trainer
        captured.before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
        return trainer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dpo, "build_trainer", capturing)
        captured.code = dpo.main(argv)
    return captured


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, tiny_model_dir, pairs_dir):
    output = tmp_path_factory.mktemp("dpo") / "lora"
    run = run_dpo(dpo_argv(tiny_model_dir, pairs_dir, output))
    assert run.code == 0
    run.output = output
    run.summary = json.loads((output / sft.SUMMARY_FILE).read_text())
    return run


def accuracy_on(model_dir: Path, pairs_file: Path, adapter: Path | None = None) -> dict:
    model, tokenizer = load_model(str(model_dir), Dtype.FLOAT32, adapter=str(adapter) if adapter else None)
    return evaluate.preference_accuracy(model, tokenizer, evaluate.read_pairs(pairs_file), max_length=256)


def test_dpo_raises_the_preference_accuracy_on_the_training_pairs(dpo_run, tiny_model_dir, pairs_dir):
    before = accuracy_on(tiny_model_dir, pairs_dir / dpo.TRAIN_FILE)
    after = accuracy_on(tiny_model_dir, pairs_dir / dpo.TRAIN_FILE, adapter=dpo_run.output)
    assert before["pairs"] == after["pairs"] == TRAIN_PAIRS and before["skipped"] == 0
    assert before["accuracy"] <= 0.75  # equal lengths: the random model has no reason to prefer the chosen replies
    assert after["accuracy"] > before["accuracy"] and after["accuracy"] >= 0.9, (before, after)
    assert after["margin"] > before["margin"]


def test_orpo_raises_the_preference_accuracy_without_a_reference_model(tiny_model_dir, pairs_dir, tmp_path):
    output = tmp_path / "orpo"
    run = run_dpo(dpo_argv(tiny_model_dir, pairs_dir, output, "--loss", "orpo", "--beta", "1", "--learning-rate",
                           "1e-2", "--report-to", "none"))
    assert run.code == 0
    assert type(run.trainer).__name__ == "ORPOTrainer" and not hasattr(run.trainer, "ref_model")
    before = accuracy_on(tiny_model_dir, pairs_dir / dpo.TRAIN_FILE)
    after = accuracy_on(tiny_model_dir, pairs_dir / dpo.TRAIN_FILE, adapter=output)
    assert after["accuracy"] > before["accuracy"] and after["accuracy"] >= 0.9, (before, after)
    summary = json.loads((output / sft.SUMMARY_FILE).read_text())
    assert summary["method"] == "ORPO (LoRA)"
    assert summary["objective"]["reference_model"].startswith("none")
    assert summary["rewards"]["accuracy"] is not None and summary["rewards"]["margin"] is not None
    assert all(math.isfinite(entry["loss"]) for entry in summary["loss_history"])


def test_lora_dpo_uses_the_base_with_the_adapter_off_as_reference(dpo_run):
    trainer = dpo_run.trainer
    assert trainer.ref_model is None  # no second copy of the weights: TRL disables the adapter instead
    assert trainer.loss_types == ["sigmoid"] and trainer.beta == 0.1
    after = dict(trainer.model.named_parameters())
    lora = [name for name in after if "lora_" in name]
    base = [name for name in after if "lora_" not in name]
    assert lora and base
    assert all(not torch.equal(dpo_run.before[name], after[name].detach()) for name in lora)
    assert all(torch.equal(dpo_run.before[name], after[name].detach()) for name in base)


def test_summary_records_data_rewards_preference_accuracy_and_versions(dpo_run):
    summary = dpo_run.summary
    assert summary["command"] == "dpo" and summary["method"] == "DPO (LoRA)"
    assert summary["objective"] == {"loss": "dpo", "beta": 0.1, "trl_loss_type": "sigmoid",
                                    "reference_model": f"{summary['base_model']} with the adapter switched off"}
    assert summary["hyperparameters"]["loss"] == "dpo" and summary["hyperparameters"]["learning_rate"] == 5e-3
    data = summary["data"]
    assert data["pairs"] == {"train": TRAIN_PAIRS, "validation": VALIDATION_PAIRS}
    tokens = data["train_tokens"]
    assert tokens["pairs"] == TRAIN_PAIRS and 0 < tokens["reply_tokens"] < tokens["tokens"]
    assert tokens["cut"] == tokens["left_out"] == 0
    train = summary["train"]
    assert train["global_step"] == STEPS and math.isfinite(train["train_loss"])
    assert train["tokens_seen"] > 0 and train["tokens_per_second"] > 0 and train["runtime_s"] > 0
    # The reward figures are TRL's, from the last training log and the last evaluation.
    last = summary["loss_history"][-1]
    assert len(summary["loss_history"]) == STEPS and last["step"] == STEPS
    assert summary["rewards"]["accuracy"] == last["rewards/accuracies"] == 1.0
    assert summary["rewards"]["margin"] == last["rewards/margins"] > 0
    assert [entry["step"] for entry in summary["eval_history"]] == [0, 6, 12]
    assert summary["rewards"]["eval_accuracy"] == summary["eval_history"][-1]["rewards/accuracies"]
    assert summary["eval"]["eval_loss_before"] == pytest.approx(math.log(2), abs=1e-4)  # adapter at zero: no margin
    assert summary["eval"]["eval_loss"] < summary["eval"]["eval_loss_before"]
    measured = summary["preference_accuracy"]
    assert measured["split"] == "validation" and measured["pairs"] == VALIDATION_PAIRS
    assert measured["after"]["margin"] > measured["before"]["margin"]
    assert {"torch", "transformers", "trl", "peft"} <= set(summary["versions"])


def test_tensorboard_holds_the_reward_accuracies_and_margins(dpo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list] = {}
    for path in sorted((dpo_run.output / "runs").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(accumulator.Scalars(tag))
    for tag in ("train/loss", "train/rewards/accuracies", "train/rewards/margins"):
        assert [event.step for event in scalars[tag]] == list(range(1, STEPS + 1)), tag
    assert [event.step for event in scalars["eval/rewards/accuracies"]] == [0, 6, 12]
    assert "eval/rewards/margins" in scalars


def test_resume_continues_from_the_checkpoint_to_the_same_adapter(dpo_run, tiny_model_dir, pairs_dir, tmp_path):
    from safetensors.torch import load_file

    interrupted = tmp_path / "interrupted"
    shutil.copytree(dpo_run.output / "checkpoint-6", interrupted / "checkpoint-6")
    assert run_dpo(dpo_argv(tiny_model_dir, pairs_dir, interrupted, "--resume", "--report-to", "none")).code == 0
    summary = json.loads((interrupted / sft.SUMMARY_FILE).read_text())
    assert summary["train"]["resumed_from"] == "checkpoint-6" and summary["train"]["global_step"] == STEPS
    full, continued = (load_file(path / "adapter_model.safetensors") for path in (dpo_run.output, interrupted))
    assert full.keys() == continued.keys()
    for key in full:
        torch.testing.assert_close(continued[key], full[key], rtol=1e-4, atol=1e-5)


def test_evaluate_reports_the_preference_accuracy_of_base_and_fine_tuned(dpo_run, tiny_model_dir, pairs_dir,
                                                                          tmp_path):
    # Only preference pairs in --data: the report holds the preference accuracy alone.
    argv = ["--model", str(tiny_model_dir), "--adapter", str(dpo_run.output), "--data", str(pairs_dir),
            "--max-length", "256"]
    assert evaluate.main([*argv, "--output", str(tmp_path / "validation")]) == 0
    report = json.loads((tmp_path / "validation" / "report.json").read_text())
    assert set(report["results"]) == {"base", "fine_tuned"}
    assert report["pairs"] == VALIDATION_PAIRS and report["conversations"] == 0 and not report["generations"]
    assert all(set(result) == {"preferences"} for result in report["results"].values())
    # The same model, pairs and scoring as the summary's figures after and before training.
    measured = dpo_run.summary["preference_accuracy"]
    assert report["results"]["fine_tuned"]["preferences"] == measured["after"]
    for key in ("accuracy", "margin", "pairs"):
        assert report["results"]["base"]["preferences"][key] == pytest.approx(measured["before"][key], abs=1e-3)
    markdown = (tmp_path / "validation" / "report.md").read_text()
    assert "| preference accuracy |" in markdown and "## Replies" not in markdown and "| loss |" not in markdown

    assert evaluate.main([*argv, "--split", "train", "--output", str(tmp_path / "train")]) == 0
    results = json.loads((tmp_path / "train" / "report.json").read_text())["results"]
    assert results["fine_tuned"]["preferences"]["accuracy"] >= 0.9
    assert results["fine_tuned"]["preferences"]["accuracy"] > results["base"]["preferences"]["accuracy"]


def test_evaluate_reports_loss_and_preference_accuracy_together(tiny_model_dir, dataset_dir, pairs_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(dataset_dir / "validation.jsonl", data / "validation.jsonl")
    shutil.copy(pairs_dir / dpo.VALIDATION_FILE, data / dpo.VALIDATION_FILE)
    code = evaluate.main(["--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "eval"),
                          "--generations", "1", "--max-new-tokens", "4", "--max-pairs", "4"])
    assert code == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    result = report["results"]["model"]
    assert result["loss"] > 0 and result["preferences"]["pairs"] == 4 and report["pairs"] == 4
    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert "| perplexity |" in markdown and "| preference accuracy |" in markdown and "**reference:**" in markdown


def test_evaluate_without_conversations_or_pairs_is_the_same_error(tiny_model_dir, tmp_path, capsys):
    assert evaluate.main(["--model", str(tiny_model_dir), "--data", str(tmp_path), "--output", str(tmp_path)]) == 2
    assert "validation.jsonl (and preferences_validation.jsonl) is missing or empty" in capsys.readouterr().err


def test_the_dpo_adapter_merges_and_the_llm_service_serves_it(dpo_run, tiny_model_dir, tmp_path):
    merged = tmp_path / "merged"
    assert merge.main(["--model", str(tiny_model_dir), "--adapter", str(dpo_run.output), "--output", str(merged)]) == 0
    served = serve_one_reply(merged, name="training_dpo_merged")
    assert served.strip()
    reference = base_plus_adapter(tiny_model_dir, dpo_run.output)
    expected = evaluate.generate_reply(reference, load_tokenizer(str(dpo_run.output)), QUESTION, max_new_tokens=10)
    assert served.strip() == expected
    card = (merged / "README.md").read_text()
    assert 'tags: ["ridgeline-assistant", "dpo", "lora", "merged"]' in card
    assert "preference-tuned on chosen/rejected reply pairs with DPO (LoRA) (`python -m training dpo`)" in card
    assert f"- preference pairs (a prompt, a chosen and a rejected reply): {TRAIN_PAIRS} for training" in card
    assert "| loss | dpo |" in card and "| beta | 0.1 |" in card and "| learning_rate | 0.005 |" in card
    assert "Reference model: " in card and "with the adapter switched off" in card
    assert f"Preference accuracy on {VALIDATION_PAIRS} validation pairs" in card


def test_qlora_and_full_fine_tuning_with_ipo(tiny_model_dir, pairs_dir, tmp_path):
    from bitsandbytes.nn import Linear4bit

    quick = ("--max-steps", "2", "--report-to", "none", "--eval-steps", "2")
    qlora = run_dpo(dpo_argv(tiny_model_dir, pairs_dir, tmp_path / "qlora", "--quantization", "nf4", *quick))
    assert qlora.code == 0
    assert sum(isinstance(m, Linear4bit) for m in qlora.trainer.model.modules()) == 14  # 7 projections x 2 layers
    assert qlora.trainer.ref_model is None
    assert json.loads((tmp_path / "qlora" / sft.SUMMARY_FILE).read_text())["method"] == "DPO (QLoRA, nf4)"

    full = run_dpo(dpo_argv(tiny_model_dir, pairs_dir, tmp_path / "full", "--lora-r", "0", "--loss", "ipo", *quick))
    assert full.code == 0
    assert full.trainer.ref_model is not None  # without an adapter to switch off, a frozen copy is the reference
    assert full.trainer.loss_types == ["ipo"]
    summary = json.loads((tmp_path / "full" / sft.SUMMARY_FILE).read_text())
    assert summary["method"] == "IPO (full fine-tuning)" and summary["objective"]["trl_loss_type"] == "ipo"
    assert (tmp_path / "full" / "model.safetensors").is_file()  # a whole model, served as is


def test_defaults_are_preference_tuning_rates_and_sft_keeps_its_own():
    assert DPOArgs(model="m", data="d", output="o").learning_rate == 5e-5
    assert DPOArgs(model="m", data="d", output="o", lora_r=0).learning_rate == 5e-6
    assert DPOArgs(model="m", data="d", output="o").loss.value == "dpo"
    assert SFTArgs(model="m", data="d", output="o").learning_rate == 2e-4
    assert "beta" not in SFTArgs.__dataclass_fields__
    with pytest.raises(ConfigError, match="--beta must be more than zero"):
        DPOArgs(model="m", data="d", output="o", beta=0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--loss", "kto"), "argument --loss: invalid choice: 'kto'"),
        (("--beta", "0"), "--beta must be more than zero, got 0.0"),
        (("--quantization", "nf4", "--lora-r", "0"), "--quantization nf4 freezes the base weights in nf4"),
        (("--max-steps", "0"), "--max-steps must be a positive number of steps"),
        (("--report-to", "wandb"), "--report-to wandb needs the wandb package"),
    ],
)
def test_bad_flags_exit_2_with_a_sentence(extra, message, tiny_model_dir, pairs_dir, tmp_path, capsys,
                                         monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # not installed, wherever the tests run
    assert dpo.main(dpo_argv(tiny_model_dir, pairs_dir, tmp_path / "o", *extra)) == 2
    assert message in capsys.readouterr().err


def test_missing_pairs_an_adapter_as_model_and_old_checkpoints_are_refused(dpo_run, tiny_model_dir, pairs_dir,
                                                                           dataset_dir, tmp_path, capsys):
    assert dpo.main(dpo_argv(tiny_model_dir, dataset_dir, tmp_path / "o")) == 2  # conversations, no pairs
    assert ("no preferences_train.jsonl; run `python -m training prepare --input ... --output "
            f"{dataset_dir}` with a file of preference pairs") in capsys.readouterr().err
    assert dpo.main(dpo_argv(dpo_run.output, pairs_dir, tmp_path / "o")) == 2
    assert "is an adapter, not a model: merge it into its base first" in capsys.readouterr().err
    assert dpo.main(dpo_argv(tiny_model_dir, pairs_dir, dpo_run.output)) == 2
    assert f"already holds checkpoints (checkpoint-{STEPS}); pass --resume" in capsys.readouterr().err
    assert dpo.main(dpo_argv(tiny_model_dir, pairs_dir, tmp_path / "fresh", "--resume")) == 2
    assert "has no checkpoint-N folder to continue from" in capsys.readouterr().err
    assert dpo.main(dpo_argv(tiny_model_dir, pairs_dir, tmp_path / "o", "--max-length", "16")) == 2
    assert "no pair has a reply within --max-length 16 tokens" in capsys.readouterr().err


def test_a_malformed_pair_is_bad_data_exit_1(tiny_model_dir, pairs_dir, tmp_path, capsys):
    lines = (pairs_dir / dpo.TRAIN_FILE).read_text().splitlines()
    broken = json.loads(lines[1])
    broken["chosen"] = broken["chosen"] + broken["rejected"]
    (tmp_path / dpo.TRAIN_FILE).write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    assert dpo.main(dpo_argv(tiny_model_dir, tmp_path, tmp_path / "o")) == 1
    assert f"{tmp_path / dpo.TRAIN_FILE}:2: chosen must be one assistant message" in capsys.readouterr().err
