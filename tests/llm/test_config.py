"""ServiceConfig: flags over LLM_* environment over defaults, and start-up validation."""

from __future__ import annotations

import pytest

from llm.config import DEFAULT_MODEL, Device, Dtype, EngineKind, Prepack, Quantization, ServiceConfig
from llm.errors import ConfigError


def parse(argv=(), env=None, cuda=False, bf16=False, bnb=True, cpu_bf16=True, llamacpp=True) -> ServiceConfig:
    return ServiceConfig.from_args(
        list(argv), environ=env or {}, cuda_available=cuda, bf16_supported=bf16,
        bitsandbytes_available=bnb, cpu_bf16_supported=cpu_bf16, llamacpp_available=llamacpp,
    )


def test_defaults_resolve_to_llamacpp_on_the_cpu_and_never_to_float32():
    config = parse()
    assert config.model == DEFAULT_MODEL
    assert (config.host, config.port, config.max_new_tokens_cap) == ("127.0.0.1", 8000, 512)
    assert (config.engine, config.device, config.dtype) == (EngineKind.LLAMACPP, Device.CPU, Dtype.BFLOAT16)
    assert config.sources["engine"].startswith("auto: on the CPU llama.cpp")
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
        ({"LLM_PORT": "eighty"}, "LLM_PORT='eighty' is not a whole number"),
        ({"LLM_DEVICE": "tpu"}, "LLM_DEVICE='tpu' is not valid; use one of auto, cpu, cuda"),
        ({"LLM_PORT": "70000"}, "Port 70000 is out of range"),
        ({"LLM_MAX_NEW_TOKENS_CAP": "0"}, "set it (or LLM_MAX_NEW_TOKENS_CAP) to 1 or more"),
        ({"LLM_DEFAULT_MAX_TOKENS": "600"}, "--default-max-tokens (600) must be between 1 and --max-new-tokens-cap (512)"),
        ({"LLM_CPU_THREADS": "-1"}, "--cpu-threads is -1"),
        ({"LLM_MAX_BATCH_SIZE": "0"}, "--max-batch-size is 0; set it (or LLM_MAX_BATCH_SIZE) to 1 or more"),
        ({"LLM_MAX_QUEUE_SIZE": "-1"}, "--max-queue-size is -1"),
        ({"LLM_PREFILL_CHUNK_TOKENS": "0"}, "--prefill-chunk-tokens is 0; set it (or LLM_PREFILL_CHUNK_TOKENS) to 1 or more"),
        ({"LLM_PREFILL_CHUNK_TOKENS": "many"}, "LLM_PREFILL_CHUNK_TOKENS='many' is not a whole number"),
        ({"LLM_REQUEST_TIMEOUT_S": "soon"}, "LLM_REQUEST_TIMEOUT_S='soon' is not a number"),
        ({"LLM_REQUEST_TIMEOUT_S": "-5"}, "--request-timeout-s is -5; set it (or LLM_REQUEST_TIMEOUT_S) to 0"),
        ({"LLM_QUANTIZATION": "int4"}, "LLM_QUANTIZATION='int4' is not valid; use one of auto, none, int8, nf4"),
        ({"LLM_ADAPTER": "/no/such/adapter"}, "--adapter /no/such/adapter is not a directory"),
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


def test_serving_limits_are_read_from_flags_and_environment():
    config = parse(["--max-batch-size", "4", "--request-timeout-s", "2.5"], env={"LLM_MAX_QUEUE_SIZE": "7"})
    assert (config.max_batch_size, config.max_queue_size, config.request_timeout_s) == (4, 7, 2.5)
    assert config.sources["max_queue_size"] == "env LLM_MAX_QUEUE_SIZE"
    defaults = parse()
    assert (defaults.max_batch_size, defaults.max_queue_size, defaults.request_timeout_s) == (16, 64, 120.0)


def test_prefill_chunk_size_is_read_from_flag_and_environment():
    assert parse().prefill_chunk_tokens == 256
    assert parse(env={"LLM_PREFILL_CHUNK_TOKENS": "64"}).prefill_chunk_tokens == 64
    assert parse(["--prefill-chunk-tokens", "32"], env={"LLM_PREFILL_CHUNK_TOKENS": "64"}).prefill_chunk_tokens == 32


@pytest.mark.parametrize(
    ("cuda", "expected", "why"),
    [(False, Quantization.NONE, "bitsandbytes dequantizes on the CPU"), (True, Quantization.NF4, "nf4 halves")],
)
def test_quantization_auto_is_nf4_on_cuda_and_none_on_the_cpu(cuda, expected, why):
    config = parse(cuda=cuda, bf16=True)
    assert config.quantization is expected
    assert why in config.sources["quantization"]


def test_int8_and_nf4_are_accepted_on_the_cpu():
    assert parse(["--quantization", "int8"]).quantization is Quantization.INT8
    assert parse(env={"LLM_QUANTIZATION": "nf4"}).quantization is Quantization.NF4


def test_quantization_without_bitsandbytes_fails_at_start_up():
    with pytest.raises(ConfigError, match="--quantization nf4 needs bitsandbytes, which is not installed; pip install"):
        parse(["--quantization", "nf4"], bnb=False)
    assert parse(["--quantization", "none"], bnb=False).quantization is Quantization.NONE


@pytest.mark.parametrize(
    ("argv", "cpu_bf16", "expected"),
    [
        (["--dtype", "bfloat16"], True, Prepack.ON),
        (["--dtype", "bfloat16"], False, Prepack.OFF),
        (["--dtype", "float32"], True, Prepack.OFF),
        (["--dtype", "bfloat16", "--quantization", "int8"], True, Prepack.OFF),
    ],
)
def test_cpu_prepack_auto_is_on_for_unquantized_bfloat16_on_a_bf16_cpu(argv, cpu_bf16, expected):
    config = parse(argv, cpu_bf16=cpu_bf16)
    assert config.cpu_prepack is expected
    assert config.sources["cpu_prepack"].startswith("auto:")


@pytest.mark.parametrize(
    ("argv", "cuda", "fragment"),
    [
        (["--cpu-prepack", "on", "--quantization", "nf4"], False, "--cpu-prepack on repacks unquantized weights"),
        (["--cpu-prepack", "on"], True, "--cpu-prepack on only applies to --device cpu"),
    ],
)
def test_invalid_prepack_combinations_fail_with_a_sentence(argv, cuda, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse(argv, cuda=cuda, bf16=True)


def test_adapter_directory_must_hold_an_adapter_config(tmp_path):
    with pytest.raises(ConfigError, match="has no adapter_config.json, so it is not a PEFT adapter"):
        parse(["--adapter", str(tmp_path)])
    (tmp_path / "adapter_config.json").write_text("{}")
    assert parse(["--adapter", str(tmp_path)]).adapter == str(tmp_path)


def test_api_key_comes_from_the_environment_only_and_is_never_printed(capsys):
    config = parse(env={"LLM_API_KEY": "s3cret"})
    assert config.api_key == "s3cret"
    assert "api_key=(set) (env LLM_API_KEY)" in config.describe()
    assert "s3cret" not in "\n".join(config.describe()) + repr(config)
    assert parse().describe().count("api_key=(unset) (default)") == 1
    with pytest.raises(SystemExit):
        parse(["--api-key", "x"])
    assert "unrecognized arguments: --api-key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "cuda", "llamacpp", "expected", "reason"),
    [
        ([], True, True, EngineKind.TRANSFORMERS, "on CUDA the transformers engine"),
        ([], False, False, EngineKind.TRANSFORMERS, "llama-cpp-python is not installed"),
        (["--adapter", "ADAPTER"], False, True, EngineKind.TRANSFORMERS, "an unmerged --adapter needs transformers"),
        (["--engine", "transformers"], False, True, EngineKind.TRANSFORMERS, None),
    ],
)
def test_engine_auto_picks_llamacpp_only_on_the_cpu_when_it_can(tmp_path, argv, cuda, llamacpp, expected, reason):
    (tmp_path / "adapter_config.json").write_text("{}")
    argv = [str(tmp_path) if a == "ADAPTER" else a for a in argv]
    config = parse(argv, cuda=cuda, bf16=True, llamacpp=llamacpp)
    assert config.engine is expected
    if reason:
        assert reason in config.sources["engine"]


@pytest.mark.parametrize(
    ("argv", "cuda", "llamacpp", "fragment"),
    [
        (["--engine", "llamacpp", "--adapter", "ADAPTER"], False, True,
         "--engine llamacpp cannot serve an unmerged --adapter .*`python -m training merge"),
        (["--engine", "llamacpp"], False, False, "needs llama-cpp-python, which is not installed; run `make setup`"),
        (["--engine", "llamacpp"], True, True, "use --engine transformers"),
        (["--engine", "llamacpp", "--quantization", "int8"], False, True, "--gguf-quant"),
        (["--warm-prompt", "no/such/file"], False, True, "--warm-prompt no/such/file is not a file"),
    ],
)
def test_engine_combinations_it_cannot_serve_fail_at_start_up(tmp_path, argv, cuda, llamacpp, fragment):
    (tmp_path / "adapter_config.json").write_text("{}")
    argv = [str(tmp_path) if a == "ADAPTER" else a for a in argv]
    with pytest.raises(ConfigError, match=fragment):
        parse(argv, cuda=cuda, bf16=True, llamacpp=llamacpp)
