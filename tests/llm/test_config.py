"""ServiceConfig: flags over LLM_* environment over defaults, and start-up validation."""

from __future__ import annotations

import pytest

from llm.config import DEFAULT_MODEL, Device, Dtype, ServiceConfig
from llm.errors import ConfigError


def parse(argv=(), env=None, cuda=False, bf16=False) -> ServiceConfig:
    return ServiceConfig.from_args(list(argv), environ=env or {}, cuda_available=cuda, bf16_supported=bf16)


def test_defaults_resolve_to_cpu_float32_without_a_gpu():
    config = parse()
    assert config.model == DEFAULT_MODEL
    assert (config.host, config.port, config.max_new_tokens_cap) == ("127.0.0.1", 8000, 512)
    assert (config.device, config.dtype) == (Device.CPU, Dtype.FLOAT32)
    assert config.served_model_name == DEFAULT_MODEL
    assert config.sources["port"] == "default"
    assert config.sources["device"].startswith("auto:")


def test_environment_sets_every_kind_of_field():
    env = {
        "LLM_MODEL": "models/tiny-qwen2",
        "LLM_PORT": "9001",
        "LLM_DTYPE": "BFloat16",
        "LLM_MAX_NEW_TOKENS_CAP": "64",
        "LLM_DEFAULT_MAX_TOKENS": "32",
        "LLM_SERVED_MODEL_NAME": "ridgeline",
    }
    config = parse(env=env)
    assert config.model == "models/tiny-qwen2"
    assert config.port == 9001
    assert config.dtype is Dtype.BFLOAT16
    assert (config.max_new_tokens_cap, config.default_max_tokens) == (64, 32)
    assert config.served_model_name == "ridgeline"
    assert config.sources["port"] == "env LLM_PORT"


def test_flags_override_the_environment():
    config = parse(["--port", "8100", "--model", "/m"], env={"LLM_PORT": "9001", "LLM_MODEL": "/env-model"})
    assert (config.port, config.model) == (8100, "/m")
    assert config.sources["port"] == "flag --port"
    assert config.served_model_name == "/m"


def test_empty_environment_values_are_ignored():
    assert parse(env={"LLM_PORT": "  "}).port == 8000


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"LLM_PORT": "eighty"}, "LLM_PORT='eighty' is not an integer"),
        ({"LLM_DEVICE": "tpu"}, "LLM_DEVICE='tpu' is not valid; use one of auto, cpu, cuda"),
        ({"LLM_PORT": "70000"}, "Port 70000 is out of range"),
        ({"LLM_MAX_NEW_TOKENS_CAP": "0"}, "set it (or LLM_MAX_NEW_TOKENS_CAP) to 1 or more"),
        ({"LLM_DEFAULT_MAX_TOKENS": "600"}, "--default-max-tokens (600) must be between 1 and --max-new-tokens-cap (512)"),
        ({"LLM_CPU_THREADS": "-1"}, "--cpu-threads is -1"),
        ({"LLM_DEVICE": "cpu", "LLM_DTYPE": "float16"}, "--dtype float16 is not supported for generation on the CPU"),
    ],
)
def test_invalid_values_fail_with_a_sentence_saying_what_to_change(env, fragment):
    with pytest.raises(ConfigError) as error:
        parse(env=env)
    assert fragment in str(error.value)


def test_bad_flag_value_is_an_argparse_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--device", "tpu"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_float16_with_auto_device_fails_when_there_is_no_gpu():
    with pytest.raises(ConfigError, match="float16 is not supported for generation on the CPU, and there is no GPU"):
        parse(["--dtype", "float16"], cuda=False)
    assert parse(["--dtype", "float16"], cuda=True).dtype is Dtype.FLOAT16


def test_cuda_requested_without_a_gpu_fails_at_start_up():
    with pytest.raises(ConfigError, match="--device cuda was requested but PyTorch sees no CUDA device"):
        parse(["--device", "cuda"], cuda=False)


@pytest.mark.parametrize(("bf16", "dtype"), [(True, Dtype.BFLOAT16), (False, Dtype.FLOAT16)])
def test_auto_on_a_gpu_picks_cuda_and_a_half_dtype(bf16, dtype):
    config = parse(cuda=True, bf16=bf16)
    assert (config.device, config.dtype) == (Device.CUDA, dtype)
    assert "auto:" in config.sources["dtype"]


def test_bfloat16_on_a_gpu_without_support_fails():
    with pytest.raises(ConfigError, match="does not support bfloat16; use --dtype float16"):
        parse(["--dtype", "bfloat16"], cuda=True, bf16=False)


def test_describe_lists_each_value_with_its_source():
    lines = parse(["--port", "8100"], env={"LLM_MODEL": "/m"}).describe()
    assert "port=8100 (flag --port)" in lines
    assert "model=/m (env LLM_MODEL)" in lines
    assert any(line.startswith("device=cpu (auto:") for line in lines)
