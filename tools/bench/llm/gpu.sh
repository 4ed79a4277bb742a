#!/usr/bin/env bash
# The LLM benchmark on a GPU host, in one go: bf16, int8 and nf4 on the Qwen2.5-1.5B shape
# (random weights, built on first use), concurrency 1-16; records tokens/s, TTFT and GPU memory.
# A few minutes on one GPU. Usage: tools/bench/llm/gpu.sh [extra `python -m tools.bench.llm` flags]
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY="${PY:-.venv/bin/python}"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "error: no CUDA device; run this on a GPU host")'
exec "$PY" -m tools.bench.llm \
  --model-shape qwen2.5-1.5b --dtype bfloat16 --quantization none,int8,nf4 \
  --concurrency 1,4,8,16 --requests 32 --max-tokens 128 \
  --output "var/bench/llm-qwen2.5-1.5b-gpu-$(date +%Y%m%d-%H%M%S).json" "$@"
