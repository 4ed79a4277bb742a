"""GGUF files for the llama.cpp engine: HF checkpoint (+ LoRA merged first) -> GGUF, converted once and cached."""
