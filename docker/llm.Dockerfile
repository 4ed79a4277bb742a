# syntax=docker/dockerfile:1
# The LLM service (python -m llm serve). Two variants from one file:
#   docker build -f docker/llm.Dockerfile -t ridgeline/llm:0.1.0 .                    # GPU (default, CUDA base)
#   docker build -f docker/llm.Dockerfile --target cpu -t ridgeline/llm:0.1.0-cpu .  # CPU (torch CPU wheel)
# No weights inside: LLM_MODEL names a hub id (downloaded into HF_HOME, a volume) or a mounted
# directory (the Helm chart's weights volume).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---- CPU ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu-build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml docker/requirements.py /tmp/
# The CPU index's torch (2.x.y+cpu) sorts above PyPI's CUDA build of the same version.
RUN python /tmp/requirements.py llm /tmp/pyproject.toml > /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --extra-index-url "${TORCH_INDEX_URL}" -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS cpu
LABEL org.opencontainers.image.title="ridgeline-llm-cpu" \
      org.opencontainers.image.description="LLM service of the Ridgeline assistant (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf && chown app:app /data/hf
COPY --from=cpu-build /opt/venv /opt/venv
WORKDIR /app
COPY ridgeline/ ./ridgeline/
COPY knowledge/ ./knowledge/
COPY llm/ ./llm/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp HF_HOME=/data/hf LLM_HOST=0.0.0.0 LLM_PORT=8000 LLM_DEVICE=cpu
USER 10001:10001
EXPOSE 8000
# Healthy = ready: the model is loaded and warmed up (a first download takes minutes).
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
