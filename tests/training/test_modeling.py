"""Config -> library objects: quantization, LoRA, dtype; and the sft settings that must be refused."""

from __future__ import annotations

import pytest
import torch

from training.config import ConfigError, Dtype, EvaluateArgs, MergeArgs, Quantization, SFTArgs
from training.modeling import get_peft_config, get_quantization_config, resolve_dtype


def test_nf4_is_the_qlora_recipe():
    config = get_quantization_config(Quantization.NF4, torch.bfloat16)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert config.bnb_4bit_quant_storage == torch.bfloat16  # FSDP shards the packed weights in this dtype


def test_int8_and_none():
    assert get_quantization_config(Quantization.INT8).load_in_8bit
    assert get_quantization_config(Quantization.NONE) is None


def test_lora_config_and_full_fine_tuning():
    config = get_peft_config(16, lora_alpha=32, lora_dropout=0.1, target_modules=["all-linear"])
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.1)
    assert config.target_modules == "all-linear"
    assert config.task_type == "CAUSAL_LM" and config.bias == "none"
    assert get_peft_config(8, target_modules=["q_proj", "v_proj"]).target_modules == {"q_proj", "v_proj"}
    assert get_peft_config(0) is None


def test_auto_dtype():
    assert resolve_dtype(Dtype.AUTO, cuda=False) == torch.float32
    assert resolve_dtype(Dtype.AUTO, cuda=True, bf16=True) == torch.bfloat16
    assert resolve_dtype(Dtype.AUTO, cuda=True, bf16=False) == torch.float16
    assert resolve_dtype(Dtype.FLOAT16) == torch.float16


def sft_args(**overrides) -> SFTArgs:
    return SFTArgs(model="m", data="d", output="o", **overrides)


def test_sft_defaults():
    args = sft_args()
    assert args.quantization is Quantization.NONE and args.lora_r == 16
    assert args.learning_rate == 2e-4 and args.save_steps == args.eval_steps
    assert args.gradient_checkpointing and args.report_to.value == "tensorboard"
    assert sft_args(lora_r=0).learning_rate == 2e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantization": "nf4", "lora_r": 0}, "--quantization nf4 freezes the base weights in nf4, so it needs LoRA"),
        ({"quantization": "fp4"}, "--quantization 'fp4' is not valid; use one of none, int8, nf4"),
        ({"max_steps": 0}, "--max-steps must be a positive number of steps, or -1"),
        ({"lora_dropout": 1.0}, "--lora-dropout must be at least 0 and below 1"),
        ({"batch_size": 0}, "--batch-size must be more than zero"),
        ({"report_to": "mlflow"}, "--report-to 'mlflow' is not valid; use one of tensorboard, wandb, none"),
    ],
)
def test_sft_refuses_bad_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        sft_args(**overrides)


def test_evaluate_and_merge_outputs(tmp_path):
    assert EvaluateArgs(model="hub/id", data="d", adapter="runs/a").output == "runs/a/eval"
    with pytest.raises(ConfigError, match="--output is needed"):
        EvaluateArgs(model="hub/id", data="d")
    with pytest.raises(ConfigError, match="--output must differ from --adapter"):
        MergeArgs(model="m", adapter=str(tmp_path), output=str(tmp_path))


@pytest.mark.parametrize(("name", "kind"), [("ddp", "MULTI_GPU"), ("fsdp", "FSDP")])
def test_accelerate_configs_parse(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    from training.config import REPO_ROOT

    config = ClusterConfig.from_yaml_file(str(REPO_ROOT / "training" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind
    assert config.mixed_precision == "bf16" and not config.use_cpu
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_training_config_follows_the_arguments_and_leaves_checkpointing_to_fsdp(monkeypatch, tmp_path):
    from training.sft import make_training_config

    args = sft_args(max_steps=30, eval_steps=10, report_to="none")
    args.output = str(tmp_path)
    config = make_training_config(args, has_validation=True, torch_dtype=torch.float32)
    assert (config.max_steps, config.eval_steps, config.save_steps, config.seed) == (30, 10, 10, 42)
    assert config.eval_strategy == "steps" and config.eval_on_start
    assert config.gradient_checkpointing and config.report_to == []
    assert not config.bf16 and not config.fp16
    assert not make_training_config(args, has_validation=False, torch_dtype=torch.bfloat16).eval_on_start
    monkeypatch.setenv("FSDP_ACTIVATION_CHECKPOINTING", "true")  # set by accelerate launch with fsdp.yaml
    assert not make_training_config(args, has_validation=True, torch_dtype=torch.float32).gradient_checkpointing
