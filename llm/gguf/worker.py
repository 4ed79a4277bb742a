"""The two conversion steps, each run as its own process by ``llm.gguf.cache`` (memory is returned at exit).

    python -m llm.gguf.worker convert TOOLS MODEL_DIR OUTFILE OUTTYPE PRE_TOKENIZER
    python -m llm.gguf.worker quantize INFILE OUTFILE QUANT THREADS

``convert`` runs llama.cpp's own ``convert_hf_to_gguf.py`` (from ``TOOLS``). The
converter recognises a BPE pre-tokenizer by hashing how the tokenizer splits a
test string; a tokenizer it does not know (the project's tiny and benchmark
models train their own Qwen2 vocabulary) makes it stop. ``PRE_TOKENIZER`` names
the pre-tokenizer to write then (``qwen2`` for Qwen2's split rules); ``-``
keeps the converter's refusal. ``quantize`` calls ``llama_model_quantize``
through the binding.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

logger = logging.getLogger("llm.gguf.worker")

QUANT_TYPES = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
               "f16": "LLAMA_FTYPE_MOSTLY_F16", "bf16": "LLAMA_FTYPE_MOSTLY_BF16"}


def convert(tools: str, model_dir: str, outfile: str, outtype: str, pre_tokenizer: str) -> int:
    sys.path.insert(0, tools)
    import convert_hf_to_gguf  # noqa: F401  (puts the converter's gguf-py first on sys.path)
    from conversion import base

    recognise = base.TextModel.get_vocab_base_pre

    def named_pre_tokenizer(self, tokenizer) -> str:
        try:
            return recognise(self, tokenizer)
        except NotImplementedError:
            if pre_tokenizer == "-":
                raise NotImplementedError(
                    "llama.cpp does not recognise this tokenizer's pre-tokenizer; name the one it uses with "
                    "--pre-tokenizer (e.g. qwen2 for Qwen2's split rules)"
                ) from None
            logger.warning("Pre-tokenizer not recognised by its hash; writing %r as configured", pre_tokenizer)
            return pre_tokenizer

    base.TextModel.get_vocab_base_pre = named_pre_tokenizer
    sys.argv = ["convert_hf_to_gguf.py", model_dir, "--outfile", outfile, "--outtype", outtype]
    convert_hf_to_gguf.main()
    return 0


def quantize(infile: str, outfile: str, quant: str, threads: str) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
    params.nthread = int(threads)
    status = llama_cpp.llama_model_quantize(infile.encode(), outfile.encode(), params)
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command, *args = argv
    return {"convert": convert, "quantize": quantize}[command](*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
