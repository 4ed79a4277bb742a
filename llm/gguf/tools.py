"""Where llama.cpp's own converter lives: ``convert_hf_to_gguf.py`` and its ``conversion`` package.

The converter ships in llama-cpp-python's source distribution (``vendor/llama.cpp``),
not in the installed package. ``fetch_converter`` (run by ``make setup`` through
``python -m llm convert --fetch-tools``) asks pip for that sdist, the very version
installed, and extracts only the converter's files into
``<venv>/share/llama-cpp-convert/<version>/`` (``LLM_GGUF_TOOLS`` moves it).
Nothing else fetches anything: conversion at run time and in tests only uses
that folder, and says how to fill it when it is missing.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PACKAGE = "llama-cpp-python"
SCRIPT = "convert_hf_to_gguf.py"
# The paths (under the sdist's vendor/llama.cpp/) the converter needs: itself, its model classes,
# and the gguf-py it was written against (the script puts it first on sys.path).
MEMBERS = (SCRIPT, "conversion/", "gguf-py/gguf/", "LICENSE")


class ConverterMissing(RuntimeError):
    pass


def installed_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ConverterMissing(
            f"{PACKAGE} is not installed; run `make setup` (it builds it from source with the cpu extra) "
            "or `pip install -e '.[cpu]'`."
        ) from None


def tools_dir(version: str | None = None) -> Path:
    root = os.environ.get("LLM_GGUF_TOOLS")
    if root:
        return Path(root)
    return Path(sys.prefix) / "share" / "llama-cpp-convert" / (version or installed_version())


def converter_dir() -> Path:
    """The folder holding ``convert_hf_to_gguf.py``; raise ``ConverterMissing`` with what to run."""
    folder = tools_dir()
    if not (folder / SCRIPT).is_file():
        raise ConverterMissing(
            f"llama.cpp's converter is not in {folder}; run `make setup` or `python -m llm convert --fetch-tools` "
            f"once (it extracts it from the {PACKAGE} source distribution)."
        )
    return folder


def fetch_converter(version: str | None = None) -> Path:
    """Extract the converter of the installed llama-cpp-python (or ``version``) from its sdist; idempotent."""
    version = version or installed_version()
    folder = tools_dir(version)
    if (folder / SCRIPT).is_file():
        return folder
    with tempfile.TemporaryDirectory() as download:
        logger.info("Fetching %s==%s's source distribution for llama.cpp's converter…", PACKAGE, version)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"{PACKAGE}=={version}", "--dest", download],
            check=True,
        )
        [archive] = Path(download).glob("*.tar.gz")
        staging = Path(download) / "out"
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/", 1)
                inner = parts[1] if len(parts) == 2 else ""
                if not inner.startswith("vendor/llama.cpp/"):
                    continue
                relative = inner[len("vendor/llama.cpp/"):]
                if not member.isfile() or not relative.startswith(MEMBERS):
                    continue
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        if not (staging / SCRIPT).is_file():
            raise ConverterMissing(f"{archive.name} has no vendor/llama.cpp/{SCRIPT}; pin a {PACKAGE} that ships it.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(staging), folder)
    logger.info("llama.cpp's converter is in %s", folder)
    return folder
