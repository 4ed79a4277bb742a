"""`evaluate` writes a side-by-side report; `merge` writes a model the LLM service serves, equal to base + adapter."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.training.test_sft import STEPS, sft_argv
from training import evaluate, merge, sft

pytestmark = pytest.mark.slow

QUESTION = [{"role": "system", "content": "You are Sherpa."}, {"role": "user", "content": "Which tent keeps me dry?"}]


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_model_dir, dataset_dir):
    output = tmp_path_factory.mktemp("adapter") / "sft"
    assert sft.main(sft_argv(tiny_model_dir, dataset_dir, output, "--report-to", "none")) == 0
    return output


@pytest.fixture(scope="module")
def report(adapter_dir, tiny_model_dir, dataset_dir):
    code = evaluate.main(["--model", str(tiny_model_dir), "--adapter", str(adapter_dir), "--data", str(dataset_dir),
                          "--generations", "2", "--max-new-tokens", "6"])
    assert code == 0
    return json.loads((adapter_dir / "eval" / "report.json").read_text())


@pytest.fixture(scope="module")
def merged_dir(adapter_dir, tiny_model_dir, report, tmp_path_factory):
    output = tmp_path_factory.mktemp("merged") / "model"
    assert merge.main(["--model", str(tiny_model_dir), "--adapter", str(adapter_dir), "--output", str(output)]) == 0
    return output


def test_report_compares_base_and_fine_tuned(report, adapter_dir):
    assert set(report["results"]) == {"base", "fine_tuned"}
    for result in report["results"].values():
        assert result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-3)
        assert result["assistant_tokens"] > 0
    assert report["results"]["fine_tuned"]["loss"] < report["results"]["base"]["loss"]
    # The loss is the one sft reported on the same validation split: the same assistant tokens, the same model.
    summary = json.loads((adapter_dir / sft.SUMMARY_FILE).read_text())
    assert report["results"]["fine_tuned"]["loss"] == pytest.approx(summary["eval"]["eval_loss"], rel=1e-4)
    assert len(report["generations"]) == 2
    assert all(sample["base"] and sample["fine_tuned"] and sample["reference"] for sample in report["generations"])
    markdown = (adapter_dir / "eval" / "report.md").read_text()
    assert "| perplexity |" in markdown and "fine-tuned" in markdown and "**reference:**" in markdown


def test_evaluate_without_adapter_reports_one_model(tiny_model_dir, dataset_dir, tmp_path):
    code = evaluate.main(["--model", str(tiny_model_dir), "--data", str(dataset_dir), "--output", str(tmp_path),
                          "--generations", "0", "--max-examples", "2"])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["results"]) == {"model"} and report["conversations"] == 2


def base_plus_adapter(tiny_model_dir, adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return PeftModel.from_pretrained(base, str(adapter_dir)).eval()


def test_merged_model_equals_base_plus_adapter(merged_dir, tiny_model_dir, adapter_dir):
    from llm.config import Device, Dtype
    from llm.engine.loading import load_model

    merged, tokenizer = load_model(str(merged_dir), Device.CPU, Dtype.FLOAT32)  # exactly as the service loads it
    reference = base_plus_adapter(tiny_model_dir, adapter_dir)
    prompt = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        expected, actual = reference(input_ids=ids).logits, merged(input_ids=ids).logits
        base = reference.get_base_model()
        with reference.disable_adapter():
            untrained = base(input_ids=ids).logits
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(untrained, expected, atol=1e-3)  # the adapter did change the model
    assert tokenizer.chat_template  # the service found the chat template in the merged folder


def serve_one_reply(model, adapter: str = "", name: str = "training_served") -> str:
    """Start the LLM service's engine and HTTP app on ``model`` (+ ``adapter``) and answer QUESTION greedily."""
    from llm.config import ServiceConfig
    from llm.engine.transformers_engine import TransformersEngine
    from llm.server import create_app

    settings = {"adapter": adapter} if adapter else {}
    config = ServiceConfig(model=str(model), cpu_threads=1, max_new_tokens_cap=64, default_max_tokens=16, **settings)
    engine = TransformersEngine(config.resolve(cuda_available=False))
    engine.load()
    engine.warm_up()
    try:
        app = create_app(engine.config, engine, name=name)
        _, response = app.test_client.post("/v1/chat/completions",
                                           json={"messages": QUESTION, "max_tokens": 10, "temperature": 0})
        assert response.status == 200, response.text
        return response.json["choices"][0]["message"]["content"]
    finally:
        engine.close()


def test_the_llm_service_serves_the_merged_model_with_base_plus_adapter_replies(merged_dir, tiny_model_dir,
                                                                               adapter_dir):
    from training.modeling import load_tokenizer

    served = serve_one_reply(merged_dir, name="training_merged")
    assert served.strip()
    # Greedy decoding with the same generation config: base + adapter says the same.
    reference = base_plus_adapter(tiny_model_dir, adapter_dir)
    expected = evaluate.generate_reply(reference, load_tokenizer(str(adapter_dir)), QUESTION, max_new_tokens=10)
    assert served.strip() == expected


def test_serving_the_adapter_unmerged_gives_the_merged_models_reply(merged_dir, tiny_model_dir, adapter_dir):
    from llm.config import ServiceConfig

    if "adapter" not in ServiceConfig.__dataclass_fields__:
        pytest.skip("this version of the LLM service has no --adapter")
    merged = serve_one_reply(merged_dir, name="training_merged_again")
    unmerged = serve_one_reply(tiny_model_dir, adapter=str(adapter_dir), name="training_adapter")
    assert unmerged == merged


def test_model_card_has_data_stats_hyperparameters_and_eval_figures(merged_dir, report):
    card = (merged_dir / "README.md").read_text()
    assert card.startswith("---\nbase_model: ")
    assert "- conversations: 9 for training, 3 for validation" in card
    assert "| lora_r | 8 |" in card and "| learning_rate | 0.01 |" in card and f"| max_steps | {STEPS} |" in card
    fine_tuned = report["results"]["fine_tuned"]
    assert f"| perplexity | {report['results']['base']['perplexity']:.2f} | {fine_tuned['perplexity']:.2f} |" in card
    assert "largest logit difference, merged vs base + adapter" in card
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                 "chat_template.jinja"):
        assert (merged_dir / name).is_file(), name


def test_merging_a_whole_model_or_a_missing_adapter_is_refused(tiny_model_dir, tmp_path, capsys):
    assert merge.main(["--model", str(tiny_model_dir), "--adapter", str(tiny_model_dir),
                       "--output", str(tmp_path / "o")]) == 2
    assert "is a whole model (trained with --lora-r 0), not an adapter" in capsys.readouterr().err
    assert merge.main(["--model", str(tiny_model_dir), "--adapter", str(tmp_path),
                       "--output", str(tmp_path / "o")]) == 2
    assert "no adapter_config.json" in capsys.readouterr().err
