# syntax=docker/dockerfile:1
# The LLM service (python -m llm serve). Two variants from one file:
#   docker build -f docker/llm.Dockerfile -t ridgeline/llm:0.1.0 .                    # GPU (default, CUDA base)
#   docker build -f docker/llm.Dockerfile --target cpu -t ridgeline/llm:0.1.0-cpu .  # CPU (llama.cpp + torch CPU wheel)
# No weights inside: LLM_MODEL names a hub id (downloaded into HF_HOME, a volume) or a mounted
# directory (the Helm chart's weights volume).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---- CPU ------------------------------------------------------------------------------------
# `--engine auto` serves with llama.cpp on the CPU: llama-cpp-python (the `cpu` extra) has only an
# sdist on PyPI, so this stage compiles it (~10 minutes) with a compiler that stays out of the image.
FROM ${PYTHON_IMAGE} AS cpu-build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Portable: GGML_NATIVE=OFF compiles ggml for a baseline any x86-64 server of the last decade has
# (on x86-64: AVX2, FMA, F16C), not for the build machine's CPU (scripts/setup.sh's -DGGML_NATIVE=ON
# would crash with SIGILL on an older node). The rest is setup.sh's: no CUDA, llava, tests,
# examples, tools or server. Not GGML_BACKEND_DL/GGML_CPU_ALL_VARIANTS (the best kernels picked at run
# time): those builds load their CPU backend only through ggml_backend_load_all(), which neither
# llama-cpp-python 0.3.36 nor llm/engine calls, so loading a model would fail ("no backends are loaded").
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml docker/requirements.py /tmp/
# The CPU index's torch (2.x.y+cpu) sorts above PyPI's CUDA build of the same version.
# --no-binary: never a prebuilt llama-cpp-python wheel (built for another CPU, or without CMAKE_ARGS).
RUN python /tmp/requirements.py llm-cpu /tmp/pyproject.toml > /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && CMAKE_ARGS="${CMAKE_ARGS}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
       /opt/venv/bin/pip install --no-binary llama-cpp-python --extra-index-url "${TORCH_INDEX_URL}" \
       -r /tmp/requirements.txt

# llama.cpp's HF -> GGUF converter is in the same sdist, not in the installed package:
# `python -m llm convert --fetch-tools` extracts it into /opt/venv/share/llama-cpp-convert/<version>/
# (sys.prefix of the venv's python). A stage of its own: a change to llm/ reruns only this step, and the
# compiled venv above stays one cached layer of the final image.
FROM cpu-build AS cpu-convert-tools
WORKDIR /src
COPY ridgeline/ ./ridgeline/
COPY llm/ ./llm/
RUN /opt/venv/bin/python -m llm convert --fetch-tools

FROM ${PYTHON_IMAGE} AS cpu
LABEL org.opencontainers.image.title="ridgeline-llm-cpu" \
      org.opencontainers.image.description="LLM service of the Ridgeline assistant (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
# /data/gguf: the GGUF files the llama.cpp engine converts once and reuses (LLM_GGUF_CACHE); mount a
# volume there (docker-compose), or point --gguf-cache at the weights volume (the Helm chart).
# libgomp1: ggml's OpenMP threads (the compiled libggml-cpu links it; the compiler that brought it stays
# in cpu-build). torch's wheel carries its own copy.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf /data/gguf && chown app:app /data/hf /data/gguf
COPY --from=cpu-build /opt/venv /opt/venv
COPY --from=cpu-convert-tools /opt/venv/share/llama-cpp-convert /opt/venv/share/llama-cpp-convert
WORKDIR /app
COPY ridgeline/ ./ridgeline/
COPY knowledge/ ./knowledge/
COPY llm/ ./llm/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp HF_HOME=/data/hf LLM_GGUF_CACHE=/data/gguf LLM_HOST=0.0.0.0 LLM_PORT=8000 LLM_DEVICE=cpu
USER 10001:10001
EXPOSE 8000
# Healthy = ready: the model is loaded and warmed up (a first download and GGUF conversion take minutes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
ENTRYPOINT ["python", "-m", "llm"]
CMD ["serve"]

# ---- GPU (the default target) ---------------------------------------------------------------
# The base brings the CUDA user-space driver glue; torch's wheels bring their own CUDA libraries.
FROM ${CUDA_IMAGE} AS gpu-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml docker/requirements.py /tmp/
RUN python3 /tmp/requirements.py llm-gpu /tmp/pyproject.toml > /tmp/requirements.txt \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM ${CUDA_IMAGE} AS gpu
LABEL org.opencontainers.image.title="ridgeline-llm" \
      org.opencontainers.image.description="LLM service of the Ridgeline assistant (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf && chown app:app /data/hf
COPY --from=gpu-build /opt/venv /opt/venv
WORKDIR /app
COPY ridgeline/ ./ridgeline/
COPY knowledge/ ./knowledge/
COPY llm/ ./llm/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp HF_HOME=/data/hf LLM_HOST=0.0.0.0 LLM_PORT=8000 LLM_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
ENTRYPOINT ["python", "-m", "llm"]
CMD ["serve"]
