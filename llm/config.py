"""The LLM service's configuration: command-line flags and ``LLM_*`` environment, read here only.

Every field of ``ServiceConfig`` has a flag (``--max-new-tokens-cap``) and an
environment variable (``LLM_MAX_NEW_TOKENS_CAP``); a flag overrides the
environment, which overrides the default. ``from_args`` records where each
value came from and why ``auto`` resolved the way it did, and ``describe``
prints that at start-up. Invalid values and combinations raise ``ConfigError``
with a sentence that says what to change.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Sequence

from llm.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
ENV_PREFIX = "LLM_"


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Dtype(str, Enum):
    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class LogLevel(str, Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class ServiceConfig:
    """Settings of ``python -m llm serve``; see ``--help`` for each."""

    model: str = field(
        default=DEFAULT_MODEL,
        metadata=_help("Hugging Face Hub id or local directory of a causal LM with a chat template."),
    )
    host: str = field(default="127.0.0.1", metadata=_help("Interface to listen on (0.0.0.0 for all)."))
    port: int = field(default=8000, metadata=_help("TCP port to listen on."))
    max_new_tokens_cap: int = field(
        default=512, metadata=_help("Largest max_tokens a request may ask for; larger values get a 400.")
    )
    default_max_tokens: int = field(
        default=256, metadata=_help("max_tokens for requests that do not set it.")
    )
    device: Device = field(
        default=Device.AUTO, metadata=_help("Where the model runs; auto picks cuda when PyTorch sees a GPU.")
    )
    dtype: Dtype = field(
        default=Dtype.AUTO,
        metadata=_help("Weight dtype; auto is bfloat16 (float16 without bf16 support) on CUDA, float32 on CPU."),
    )
    cpu_threads: int = field(
        default=0, metadata=_help("PyTorch CPU threads for generation; 0 keeps PyTorch's default (one per core).")
    )
    served_model_name: str = field(
        default="", metadata=_help("Model name reported by the API; defaults to --model.")
    )
    log_level: LogLevel = field(default=LogLevel.INFO, metadata=_help("Logging level."))
    # Where each value came from ("flag --port", "env LLM_PORT", "default") and
    # why an "auto" resolved as it did; filled by from_args, shown by describe.
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.device = _to_enum(Device, self.device, "device")
        self.dtype = _to_enum(Dtype, self.dtype, "dtype")
        self.log_level = _to_enum(LogLevel, self.log_level, "log_level")
        if not self.model.strip():
            raise ConfigError("The model is empty; set --model or LLM_MODEL to a hub id or a local directory.")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"Port {self.port} is out of range; set --port or LLM_PORT to 1-65535.")
        if self.max_new_tokens_cap < 1:
            raise ConfigError(
                f"--max-new-tokens-cap is {self.max_new_tokens_cap}; set it (or LLM_MAX_NEW_TOKENS_CAP) to 1 or more."
            )
        if not 1 <= self.default_max_tokens <= self.max_new_tokens_cap:
            raise ConfigError(
                f"--default-max-tokens ({self.default_max_tokens}) must be between 1 and --max-new-tokens-cap "
                f"({self.max_new_tokens_cap}); lower LLM_DEFAULT_MAX_TOKENS or raise LLM_MAX_NEW_TOKENS_CAP."
            )
        if self.cpu_threads < 0:
            raise ConfigError(f"--cpu-threads is {self.cpu_threads}; set it (or LLM_CPU_THREADS) to 0 or more.")
        if self.device is Device.CPU and self.dtype is Dtype.FLOAT16:
            raise ConfigError(
                "--dtype float16 is not supported for generation on the CPU; "
                "use --dtype bfloat16, float32 or auto with --device cpu."
            )
        if not self.served_model_name:
            self.served_model_name = self.model.rstrip("/")

    # --- resolution of "auto" ---------------------------------------------------------------

    def resolve(self, cuda_available: bool, bf16_supported: bool = True) -> ServiceConfig:
        """A copy with concrete device and dtype, and the reasons recorded in ``sources``."""
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
                dtype, reason = Dtype.FLOAT32, "float32 is the fast, exact choice on the CPU"
            sources["dtype"] = f"auto: {reason}"
        elif device is Device.CUDA and dtype is Dtype.BFLOAT16 and not bf16_supported:
            raise ConfigError("This GPU does not support bfloat16; use --dtype float16 (or auto).")
        return dataclasses.replace(self, device=device, dtype=dtype, sources=sources)

    # --- parsing -------------------------------------------------------------------------------

    @classmethod
    def from_args(
        cls,
        argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        cuda_available: bool | None = None,
        bf16_supported: bool | None = None,
    ) -> ServiceConfig:
        """Parse ``serve`` flags over ``LLM_*`` environment variables, then resolve ``auto``.

        ``cuda_available``/``bf16_supported`` default to what PyTorch reports.
        """
        parser = argparse.ArgumentParser(prog="python -m llm serve")
        add_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv), environ, cuda_available, bf16_supported)

    @classmethod
    def from_namespace(
        cls,
        namespace: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        cuda_available: bool | None = None,
        bf16_supported: bool | None = None,
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
        return config.resolve(cuda_available, bf16_supported)

    def describe(self) -> list[str]:
        """One line per setting: name, value and where it came from."""
        lines = []
        for f in _fields():
            value = getattr(self, f.name)
            value = value.value if isinstance(value, Enum) else value
            lines.append(f"{f.name}={value} ({self.sources.get(f.name, 'default')})")
        return lines


def _fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ServiceConfig) if f.name != "sources"]


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_type(f: dataclasses.Field) -> type:
    defaults = {f.name: f.default for f in _fields()}
    return type(defaults[f.name])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per ``ServiceConfig`` field; defaults stay None so the environment can fill in."""
    for f in _fields():
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
        choices = [member.value for member in kind]
        if raw.lower() not in choices:
            raise ConfigError(f"{env_name}={raw!r} is not valid; use one of {', '.join(choices)}.")
        return kind(raw.lower())
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env_name}={raw!r} is not an integer; set it to a whole number.") from None
    return raw


def _to_enum(kind: type[Enum], value: Any, name: str) -> Enum:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigError(f"{flag(name)} {value!r} is not valid; use one of {choices}.") from None
