"""The LLM service's configuration: command-line flags and ``LLM_*`` environment, read here only.

Every field of ``ServiceConfig`` has a flag (``--max-batch-size``) and an
environment variable (``LLM_MAX_BATCH_SIZE``); a flag overrides the
environment, which overrides the default. The API key is the exception: it is
read from ``LLM_API_KEY`` only, so it never shows in ``ps``. ``from_args``
records where each value came from and why ``auto`` resolved the way it did,
and ``describe`` prints that at start-up. Invalid values and combinations
raise ``ConfigError`` with a sentence that says what to change.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Sequence

from ridgeline.logs import VARIABLES as LOG_VARIABLES
from ridgeline.logs import LogSettings
from ridgeline.settings import Allowlist, ConfigError, parse_enum, parse_number

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
ENV_PREFIX = "LLM_"
# What the service's process reads of its environment (besides the process basics, Hugging Face's
# HF_* among them): its LLM_* variables, those of ServiceConfig and llm/gguf's LLM_GGUF_*; and LOG_FORMAT
# and LOG_SENDER_SALT, which every service reads with one meaning (ridgeline.logs, log_settings()).
READS = Allowlist(names=LOG_VARIABLES, prefixes=(ENV_PREFIX,))


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Dtype(str, Enum):
    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class Quantization(str, Enum):
    AUTO = "auto"  # nf4 on CUDA, none on the CPU
    NONE = "none"
    INT8 = "int8"  # bitsandbytes LLM.int8()
    NF4 = "nf4"  # bitsandbytes 4-bit NormalFloat


class Prepack(str, Enum):
    AUTO = "auto"  # on for unquantized bfloat16 weights on a CPU with native bf16
    ON = "on"
    OFF = "off"


class EngineKind(str, Enum):
    AUTO = "auto"  # llamacpp on the CPU when llama-cpp-python is installed; transformers on CUDA
    TRANSFORMERS = "transformers"
    LLAMACPP = "llamacpp"


class GgufQuant(str, Enum):
    Q4_K_M = "q4_k_m"
    Q8_0 = "q8_0"
    BF16 = "bf16"
    F16 = "f16"


class LogLevel(str, Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class ServiceConfig:
    """Settings of ``python -m llm serve``; see ``--help`` for each."""

    model: str = field(
        default=DEFAULT_MODEL,
        metadata=_help("Hugging Face Hub id or local directory of a causal LM with a chat template."),
    )
    engine: EngineKind = field(
        default=EngineKind.AUTO,
        metadata=_help(
            "Inference engine: llamacpp (GGUF through llama.cpp, CPU), transformers (PyTorch, CPU or CUDA); "
            "auto: llamacpp on the CPU when llama-cpp-python is installed, else transformers."
        ),
    )
    gguf_quant: GgufQuant = field(
        default=GgufQuant.Q4_K_M,
        metadata=_help("Weight format of the llamacpp engine; the model is converted once and cached (see --gguf-cache)."),
    )
    gguf_cache: str = field(
        default="models/gguf",
        metadata=_help("Folder of converted GGUF files, keyed by the checksum of the weights and settings."),
    )
    warm_prompt: str = field(
        default="auto",
        metadata=_help(
            "System prompt whose KV the llamacpp engine computes at start-up and shares with every request "
            "that starts with it: auto (the action server's, from knowledge/store.yml), none, or a text file."
        ),
    )
    kv_cache_tokens: int = field(
        default=16384,
        metadata=_help("KV-cache cells of the llamacpp engine, shared by all sequences (a shared prefix counts once)."),
    )
    host: str = field(default="127.0.0.1", metadata=_help("Interface to listen on (0.0.0.0 for all)."))
    port: int = field(default=8000, metadata=_help("TCP port to listen on."))
    max_new_tokens_cap: int = field(
        default=512, metadata=_help("Largest max_tokens a request may ask for; larger values get a 400.")
    )
    default_max_tokens: int = field(
        default=256, metadata=_help("max_tokens for requests that do not set it.")
    )
    max_batch_size: int = field(
        default=16, metadata=_help("Most requests generating together in one batch on the model.")
    )
    max_queue_size: int = field(
        default=64,
        metadata=_help("Most requests waiting for a batch slot; one more gets 429 with Retry-After."),
    )
    prefill_chunk_tokens: int = field(
        default=256,
        metadata=_help(
            "Most prompt tokens (rows x columns) per prefill step: a long prompt is read in chunks, so "
            "running streams keep decoding and an abandoned request stops within one chunk."
        ),
    )
    request_timeout_s: float = field(
        default=120.0,
        metadata=_help("Deadline of a request from arrival, queueing included; past it the request gets 504. 0: none."),
    )
    device: Device = field(
        default=Device.AUTO, metadata=_help("Where the model runs; auto picks cuda when PyTorch sees a GPU.")
    )
    dtype: Dtype = field(
        default=Dtype.AUTO,
        metadata=_help("Weight dtype of the transformers engine; auto is bfloat16 (float16 on GPUs without bf16)."),
    )
    quantization: Quantization = field(
        default=Quantization.AUTO,
        metadata=_help("Weight quantization through bitsandbytes; auto is nf4 on CUDA and none on the CPU."),
    )
    adapter: str = field(
        default="", metadata=_help("Directory of a PEFT LoRA adapter to serve on top of the base model, unmerged.")
    )
    cpu_prepack: Prepack = field(
        default=Prepack.AUTO,
        metadata=_help(
            "Repack linear weights into oneDNN's blocked layout on the CPU (faster decoding); "
            "auto: on for unquantized bfloat16 on a CPU with native bf16."
        ),
    )
    cpu_threads: int = field(
        default=0, metadata=_help("CPU threads for generation; 0: one per core this process may use.")
    )
    served_model_name: str = field(
        default="", metadata=_help("Model name reported by the API; defaults to --model.")
    )
    api_key: str = field(
        default="",
        repr=False,
        metadata=_help("Bearer token clients must send to /v1/*; empty: no auth.", env_only=True, secret=True),
    )
    log_level: LogLevel = field(default=LogLevel.INFO, metadata=_help("Logging level."))
    # Where each value came from ("flag --port", "env LLM_PORT", "default") and
    # why an "auto" resolved as it did; filled by from_args, shown by describe.
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, kind in (("device", Device), ("dtype", Dtype), ("quantization", Quantization),
                           ("cpu_prepack", Prepack), ("log_level", LogLevel), ("engine", EngineKind),
                           ("gguf_quant", GgufQuant)):
            setattr(self, name, parse_enum(kind, getattr(self, name), flag(name)))
        if not self.model.strip():
            raise ConfigError("The model is empty; set --model or LLM_MODEL to a hub id or a local directory.")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"Port {self.port} is out of range; set --port or LLM_PORT to 1-65535.")
        for name, low in (("max_new_tokens_cap", 1), ("max_batch_size", 1), ("max_queue_size", 0), ("cpu_threads", 0),
                          ("prefill_chunk_tokens", 1), ("kv_cache_tokens", 256)):
            value = getattr(self, name)
            if value < low:
                raise ConfigError(f"{flag(name)} is {value}; set it (or {env_var(name)}) to {low} or more.")
        if not 1 <= self.default_max_tokens <= self.max_new_tokens_cap:
            raise ConfigError(
                f"--default-max-tokens ({self.default_max_tokens}) must be between 1 and --max-new-tokens-cap "
                f"({self.max_new_tokens_cap}); lower LLM_DEFAULT_MAX_TOKENS or raise LLM_MAX_NEW_TOKENS_CAP."
            )
        if self.request_timeout_s < 0:
            raise ConfigError(
                f"--request-timeout-s is {self.request_timeout_s:g}; set it (or LLM_REQUEST_TIMEOUT_S) to 0 "
                "(no deadline) or a number of seconds."
            )
        if self.device is Device.CPU and self.dtype is Dtype.FLOAT16:
            raise ConfigError(
                "--dtype float16 is not supported for generation on the CPU; "
                "use --dtype bfloat16, float32 or auto with --device cpu."
            )
        if self.adapter:
            _check_adapter_dir(self.adapter)
        if self.warm_prompt not in ("auto", "none") and not Path(self.warm_prompt).expanduser().is_file():
            raise ConfigError(
                f"--warm-prompt {self.warm_prompt} is not a file; set --warm-prompt (or LLM_WARM_PROMPT) to auto, "
                "none, or a text file holding the system prompt to cache at start-up."
            )
        if not self.served_model_name:
            self.served_model_name = self.model.rstrip("/")

    # --- resolution of "auto" ---------------------------------------------------------------

    def resolve(
        self,
        cuda_available: bool,
        bf16_supported: bool = True,
        bitsandbytes_available: bool | None = None,
        cpu_bf16_supported: bool | None = None,
        llamacpp_available: bool | None = None,
    ) -> ServiceConfig:
        """A copy with concrete engine, device, dtype, quantization and prepacking, and the reasons in ``sources``.

        ``bitsandbytes_available``, ``cpu_bf16_supported`` and ``llamacpp_available`` default to what this
        machine has.
        """
        sources = dict(self.sources)
        device = self.device
        if device is Device.AUTO:
            device = Device.CUDA if cuda_available else Device.CPU
            sources["device"] = "auto: " + ("PyTorch sees a CUDA device" if cuda_available else "no CUDA device")
        elif device is Device.CUDA and not cuda_available:
            raise ConfigError(
                "--device cuda was requested but PyTorch sees no CUDA device; "
                "use --device cpu (or auto), or run on a GPU host with a CUDA build of torch."
            )
        engine = self._resolve_engine(device, sources, llamacpp_available)
        dtype = self.dtype
        if device is Device.CPU and dtype is Dtype.FLOAT16:
            raise ConfigError(
                "--dtype float16 is not supported for generation on the CPU, and there is no GPU here; "
                "use --dtype bfloat16, float32 or auto."
            )
        if dtype is Dtype.AUTO:
            if device is Device.CUDA:
                dtype = Dtype.BFLOAT16 if bf16_supported else Dtype.FLOAT16
                reason = "the GPU supports bfloat16" if bf16_supported else "the GPU lacks bfloat16"
            else:
                dtype, reason = Dtype.BFLOAT16, "bfloat16 reads half the bytes of float32 per token on the CPU"
            sources["dtype"] = f"auto: {reason}"
        elif device is Device.CUDA and dtype is Dtype.BFLOAT16 and not bf16_supported:
            raise ConfigError("This GPU does not support bfloat16; use --dtype float16 (or auto).")

        quantization = self.quantization
        if quantization is Quantization.AUTO:
            quantization = Quantization.NF4 if device is Device.CUDA else Quantization.NONE
            sources["quantization"] = "auto: " + (
                "nf4 halves GPU memory again over 8-bit at little quality cost" if device is Device.CUDA
                else "bitsandbytes dequantizes on the CPU, which is slower than unquantized weights"
            )
        if quantization is not Quantization.NONE:
            if bitsandbytes_available is None:
                bitsandbytes_available = importlib.util.find_spec("bitsandbytes") is not None
            if not bitsandbytes_available:
                raise ConfigError(
                    f"--quantization {quantization.value} needs bitsandbytes, which is not installed; "
                    "pip install 'bitsandbytes>=0.47' (the gpu or dev extra) or use --quantization none."
                )

        prepack = self.cpu_prepack
        if prepack is Prepack.ON and device is not Device.CPU:
            raise ConfigError("--cpu-prepack on only applies to --device cpu; use --cpu-prepack auto or off on a GPU.")
        if prepack is Prepack.ON and quantization is not Quantization.NONE:
            raise ConfigError(
                f"--cpu-prepack on repacks unquantized weights, but --quantization is {quantization.value}; "
                "use --quantization none, or --cpu-prepack auto/off."
            )
        if prepack is Prepack.AUTO:
            if device is Device.CPU and quantization is Quantization.NONE and dtype is Dtype.BFLOAT16:
                if cpu_bf16_supported is None:
                    cpu_bf16_supported = _cpu_has_native_bf16()
                prepack = Prepack.ON if cpu_bf16_supported else Prepack.OFF
                reason = "bfloat16 on a CPU with native bf16" if cpu_bf16_supported else "this CPU lacks native bf16"
            else:
                prepack, reason = Prepack.OFF, "only unquantized bfloat16 on the CPU gains from it"
            sources["cpu_prepack"] = f"auto: {reason}"
        return dataclasses.replace(
            self, engine=engine, device=device, dtype=dtype, quantization=quantization, cpu_prepack=prepack,
            sources=sources,
        )

    def _resolve_engine(self, device: Device, sources: dict[str, str], llamacpp_available: bool | None) -> EngineKind:
        if llamacpp_available is None:
            llamacpp_available = importlib.util.find_spec("llama_cpp") is not None
        engine = self.engine
        if engine is EngineKind.AUTO:
            if device is Device.CUDA:
                engine, reason = EngineKind.TRANSFORMERS, "on CUDA the transformers engine (bitsandbytes) serves"
            elif self.adapter:
                engine, reason = EngineKind.TRANSFORMERS, (
                    "an unmerged --adapter needs transformers (merge it with `python -m training merge` for llamacpp)"
                )
            elif not llamacpp_available:
                engine, reason = EngineKind.TRANSFORMERS, "llama-cpp-python is not installed (the cpu extra)"
            else:
                engine, reason = EngineKind.LLAMACPP, "on the CPU llama.cpp reads 4-bit weights (3x fewer bytes/token)"
            sources["engine"] = f"auto: {reason}"
            return engine
        if engine is EngineKind.LLAMACPP:
            if device is Device.CUDA:
                raise ConfigError(
                    "--engine llamacpp is built for the CPU here; use --engine transformers (or auto) with --device cuda."
                )
            if not llamacpp_available:
                raise ConfigError(
                    "--engine llamacpp needs llama-cpp-python, which is not installed; run `make setup` "
                    "(pip install -e '.[cpu]') or use --engine transformers."
                )
            if self.adapter:
                raise ConfigError(
                    f"--engine llamacpp cannot serve an unmerged --adapter ({self.adapter}); merge it first with "
                    f"`python -m training merge --model {self.model} --adapter {self.adapter} --output models/merged` "
                    "and serve LLM_MODEL=models/merged, or use --engine transformers."
                )
            if self.quantization not in (Quantization.AUTO, Quantization.NONE):
                raise ConfigError(
                    f"--quantization {self.quantization.value} is bitsandbytes, for the transformers engine; "
                    "the llamacpp engine's format is --gguf-quant (q4_k_m, q8_0, bf16, f16)."
                )
        return engine

    # --- parsing -------------------------------------------------------------------------------

    @classmethod
    def from_args(
        cls,
        argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        cuda_available: bool | None = None,
        bf16_supported: bool | None = None,
        **resolve_kwargs: Any,
    ) -> ServiceConfig:
        """Parse ``serve`` flags over ``LLM_*`` environment variables, then resolve ``auto``.

        ``cuda_available``/``bf16_supported`` default to what PyTorch reports.
        """
        parser = argparse.ArgumentParser(prog="python -m llm serve")
        add_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv), environ, cuda_available, bf16_supported, **resolve_kwargs)

    @classmethod
    def from_namespace(
        cls,
        namespace: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        cuda_available: bool | None = None,
        bf16_supported: bool | None = None,
        **resolve_kwargs: Any,
    ) -> ServiceConfig:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for f in _fields():
            flag_value = getattr(namespace, f.name, None)
            env_name = env_var(f.name)
            if flag_value is not None:
                values[f.name], sources[f.name] = flag_value, f"flag {flag(f.name)}"
            elif environ.get(env_name, "").strip():
                values[f.name] = _parse_env(f, env_name, environ[env_name].strip())
                sources[f.name] = f"env {env_name}"
            else:
                sources[f.name] = "default"
        config = cls(**values, sources=sources)
        if cuda_available is None or bf16_supported is None:
            import torch

            if cuda_available is None:
                cuda_available = torch.cuda.is_available()
            if bf16_supported is None:
                bf16_supported = cuda_available and torch.cuda.is_bf16_supported()
        return config.resolve(cuda_available, bf16_supported, **resolve_kwargs)

    def describe(self) -> list[str]:
        """One line per setting: name, value and where it came from; secrets show as set/unset."""
        lines = []
        for f in _fields():
            value = getattr(self, f.name)
            value = value.value if isinstance(value, Enum) else value
            if f.metadata.get("secret"):
                value = "(set)" if value else "(unset)"
            lines.append(f"{f.name}={value} ({self.sources.get(f.name, 'default')})")
        return lines


def log_settings(environ: Mapping[str, str] | None = None) -> LogSettings:
    """LOG_FORMAT (text or json) and LOG_SENDER_SALT, for the service's log lines (ridgeline.logs)."""
    return LogSettings.from_env(os.environ if environ is None else environ)


def _fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ServiceConfig) if f.name != "sources"]


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_type(f: dataclasses.Field) -> type:
    return type(f.default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per ``ServiceConfig`` field; defaults stay None so the environment can fill in."""
    for f in _fields():
        if f.metadata.get("env_only"):
            continue
        kind = _field_type(f)
        kwargs: dict[str, Any] = {"dest": f.name, "default": None}
        default = f.default.value if isinstance(f.default, Enum) else f.default
        help_text = f"{f.metadata['help']} Env: {env_var(f.name)}."
        if default != "":
            help_text += f" Default: {default}."
        if issubclass(kind, Enum):
            kwargs["choices"] = [member.value for member in kind]
            kwargs["type"] = str
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = f.name.upper()
        parser.add_argument(flag(f.name), help=help_text, **kwargs)


def _parse_env(f: dataclasses.Field, env_name: str, raw: str) -> Any:
    kind = _field_type(f)
    if issubclass(kind, Enum):
        return parse_enum(kind, raw, env_name, ignore_case=True)
    if kind in (int, float):
        return parse_number(kind, raw, env_name)  # the ranges are checked in ServiceConfig, naming flag and variable
    return raw


def _check_adapter_dir(adapter: str) -> None:
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"--adapter {adapter} is not a directory; set --adapter (or LLM_ADAPTER) to the output directory "
            "of a LoRA training run, or leave it empty to serve the base model."
        )
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(
            f"--adapter {adapter} has no adapter_config.json, so it is not a PEFT adapter; point it at the "
            "directory that `save_pretrained` of a PEFT model wrote."
        )


def _cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX), which prepacking needs to pay off."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
