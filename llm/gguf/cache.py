"""HF checkpoint -> GGUF as a cached build step: converted once, keyed by checksum, reused afterwards.

    ensure_gguf("models/bench/qwen2.5-1.5b", "q4_k_m")  ->  models/gguf/<key>/model-q4_k_m.gguf

Two steps, each cached on its own, each in its own process (``worker.py``):

1. **convert** the checkpoint (after merging a LoRA adapter into it, when one is
   given) with llama.cpp's ``convert_hf_to_gguf.py`` to a 16-bit GGUF: bf16 for
   a bfloat16 checkpoint, f16 otherwise (both lossless for their source);
2. **quantize** that file to ``q4_k_m`` or ``q8_0`` with ``llama_model_quantize``.

A step's key is a checksum of its inputs: every file of the checkpoint (weights,
config, tokenizer; the adapter's too) and the settings (output type,
pre-tokenizer, llama-cpp-python version); the quantized file's key adds the
quantization to the 16-bit file's key. Changed weights give a new key, so a
stale file is never served; the same inputs find the file already there.
Checksums of big files are remembered by path, size and modification time
(``.checksums.json``), so a start-up does not re-read gigabytes. A lock file
keeps two processes from converting the same thing at once; results appear
atomically (written beside, then renamed). The converters print their own
progress (a bar per tensor).

Converting a real hub model (``Qwen/Qwen2.5-1.5B-Instruct``) is not tested here:
nothing here may download it. Tests convert the tiny random model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from llm.gguf import tools

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path(os.environ.get("LLM_GGUF_CACHE", "models/gguf"))
QUANTS = ("q4_k_m", "q8_0", "bf16", "f16")
SKIPPED_FILES = {"README.md", ".gitattributes"}
# Tokenizer classes whose split rules llama.cpp knows by name, for tokenizers it cannot recognise by hash.
PRE_TOKENIZERS = {"Qwen2Tokenizer": "qwen2", "Qwen2TokenizerFast": "qwen2"}


class ConversionError(RuntimeError):
    pass


@dataclass(frozen=True)
class GgufFile:
    path: Path
    key: str
    reused: bool
    seconds: float  # spent converting/quantizing now (0 when reused)
    convert_s: float = 0.0
    quantize_s: float = 0.0


def ensure_gguf(
    model: str | Path,
    quant: str = "q4_k_m",
    adapter: str | Path = "",
    pre_tokenizer: str = "auto",
    root: str | Path | None = None,
    threads: int = 0,
) -> GgufFile:
    """The GGUF of ``model`` (+ ``adapter`` merged) in ``quant``, converting only what is not cached yet."""
    if quant not in QUANTS:
        raise ConversionError(f"Unknown GGUF type {quant!r}; use one of {', '.join(QUANTS)}.")
    root = Path(root) if root is not None else DEFAULT_ROOT
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = _local_model(model)
    with _lock(root):
        if adapter:
            source = _merged(source, Path(adapter), root)
        outtype = _outtype(source)
        pre = _pre_tokenizer(source) if pre_tokenizer == "auto" else pre_tokenizer
        version = tools.installed_version()
        base_key = _digest(_checksum_dir(source, root), outtype, pre, version)
        base = root / base_key / f"model-{outtype}.gguf"
        convert_s = quantize_s = 0.0
        reused = True
        if not base.is_file():
            reused = False
            convert_s = _run_step(
                f"converting {source} to a {outtype} GGUF (minutes for a 1.5B model, once)",
                ["convert", str(tools.converter_dir()), str(source), "{out}", outtype, pre], base,
                {"source": str(source), "outtype": outtype, "pre_tokenizer": pre, "llama_cpp_python": version},
            )
        if quant == outtype:
            target = base
        else:
            key = _digest(base_key, quant)
            target = root / key / f"model-{quant}.gguf"
            if not target.is_file():
                reused = False
                quantize_s = _run_step(
                    f"quantizing {base} to {quant}",
                    ["quantize", str(base), "{out}", quant, str(threads or _cores())], target,
                    {"source": str(source), "from": str(base), "quant": quant, "llama_cpp_python": version},
                )
    seconds = time.perf_counter() - started
    if reused:
        logger.info("GGUF %s is up to date (key %s)", target, target.parent.name)
    else:
        logger.info("GGUF %s ready in %.1fs", target, seconds)
    return GgufFile(target, target.parent.name, reused, 0.0 if reused else seconds, convert_s, quantize_s)


def _run_step(what: str, args: list[str], target: Path, meta: dict) -> float:
    logger.info("GGUF: %s…", what)
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(".partial-" + target.name)
    command = [sys.executable, "-m", "llm.gguf.worker", *[partial if a == "{out}" else a for a in args]]
    result = subprocess.run([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace") if _quiet() else subprocess.run([str(c) for c in command])
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = (result.stdout or "")[-2000:] if _quiet() else "(its output is above)"
        raise ConversionError(f"GGUF step failed ({what}): exit {result.returncode}. {tail}")
    seconds = time.perf_counter() - started
    (target.parent / "meta.json").write_text(json.dumps({**meta, "seconds": round(seconds, 1)}, indent=2) + "\n")
    partial.rename(target)
    logger.info("GGUF: %s took %.1fs (%.0f MiB)", what.split(" (")[0], seconds, target.stat().st_size / 2**20)
    return seconds


def _quiet() -> bool:
    """Capture the converters' output (shown only on failure) instead of passing it through."""
    return os.environ.get("LLM_GGUF_QUIET", "") not in ("", "0")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _local_model(model: str | Path) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConversionError(f"{path} has no config.json; point --model at a Hugging Face model folder.")
        return path.resolve()
    if Path(str(model)).is_absolute() or str(model).startswith("."):
        raise ConversionError(f"--model {model} is not a directory.")
    # A hub id: the checkpoint from the Hugging Face cache (downloaded once). Not tested here.
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model), allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja"]))


def _merged(source: Path, adapter: Path, root: Path) -> Path:
    """The checkpoint with the LoRA adapter folded in (``python -m training merge``), cached by checksum."""
    if not (adapter / "adapter_config.json").is_file():
        raise ConversionError(f"--adapter {adapter} has no adapter_config.json; pass the folder `training sft` wrote.")
    key = _digest(_checksum_dir(source, root), _checksum_dir(adapter, root), "merge")
    merged = root / "merged" / key
    if not (merged / "config.json").is_file():
        logger.info("GGUF: merging the adapter %s into %s first…", adapter, source)
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            out = Path(scratch) / "model"
            subprocess.run([sys.executable, "-m", "training", "merge", "--model", str(source), "--adapter",
                            str(adapter), "--output", str(out)], check=True)
            merged.parent.mkdir(parents=True, exist_ok=True)
            out.rename(merged)
    return merged


def _outtype(source: Path) -> str:
    config = json.loads((source / "config.json").read_text())
    dtype = config.get("dtype") or config.get("torch_dtype") or ""
    return "bf16" if dtype == "bfloat16" else "f16"


def _pre_tokenizer(source: Path) -> str:
    """The pre-tokenizer to name when llama.cpp does not recognise the tokenizer ("-": none, let it refuse)."""
    path = source / "tokenizer_config.json"
    tokenizer_class = json.loads(path.read_text()).get("tokenizer_class", "") if path.is_file() else ""
    return PRE_TOKENIZERS.get(tokenizer_class, "-")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _checksum_dir(folder: Path, root: Path) -> str:
    """One checksum of every file directly in ``folder`` (names and contents), README aside."""
    memo_path = root / ".checksums.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256()
    changed = False
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name not in SKIPPED_FILES):
        stat = path.stat()
        stamp = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if memo.get(stamp) is None:
            memo[stamp] = _file_sha256(path)
            changed = True
        digest.update(f"{path.name}:{memo[stamp]}\n".encode())
    if changed:
        memo_path.write_text(json.dumps(memo, indent=0))
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
