# syntax=docker/dockerfile:1
# Rasa Open Source 3.6 on Python 3.10, with the assistant's model trained at build time and baked in.
#   docker build -f docker/rasa.Dockerfile -t ridgeline/rasa:0.1.0 .
# (linux/amd64: TensorFlow 2.12, which Rasa 3.6 pins, has no arm64 wheel.)
# How Rasa is launched (its ENV, `rasa train` and `rasa run` arguments) is defined once, in
# ridgeline_rasa/launch.py; this file stays static and tests/deploy/test_images.py keeps it equal.
# To serve a newer model without rebuilding, point Rasa at a model server
# (Helm: rasa.model.serverUrl; endpoints.yml `models:`).
ARG PYTHON_IMAGE=python:3.10.18-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements-rasa.txt /tmp/requirements-rasa.txt
# pip<24.1: Rasa 3.6's dependency metadata is refused by newer pip.
RUN python -m venv /opt/rasa \
    && /opt/rasa/bin/pip install "pip<24.1" \
    && /opt/rasa/bin/pip install -r /tmp/requirements-rasa.txt
# The Rasa extension (ridgeline_rasa: channels, FAQ gate, tracker store, API guard) and the ground
# floor it imports (ridgeline: log masking, shared shapes and checks), installed as a package.
COPY packaging/ridgeline-rasa /src/packaging/ridgeline-rasa
COPY ridgeline /src/ridgeline
COPY ridgeline_rasa /src/ridgeline_rasa
RUN /opt/rasa/bin/pip install --no-deps /src/packaging/ridgeline-rasa

FROM build AS train
ENV RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 SANIC_REQUEST_MAX_SIZE=2097152
WORKDIR /project
COPY rasa_project/config.yml ./config.yml
COPY rasa_project/domain ./domain
COPY rasa_project/data ./data
RUN /opt/rasa/bin/rasa train --domain domain --fixed-model-name assistant --out /models --quiet

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ridgeline-rasa" \
      org.opencontainers.image.description="Rasa 3.6 server of the Ridgeline assistant, model included" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/rasa /opt/rasa
WORKDIR /app
COPY --from=train /models/assistant.tar.gz /app/models/assistant.tar.gz
COPY rasa_project/credentials.yml rasa_project/endpoints.yml /app/
# The old names connectors.* and components.* (deprecated, for one release: an operator's
# credentials.yml or an older model may name them); Rasa puts its working directory /app on sys.path.
COPY rasa_project/connectors /app/connectors
COPY rasa_project/components /app/components
# endpoints.yml sends ${ACTION_SERVER_TOKEN} to the action server: Rasa does not start without
# it in its environment. HOME=/tmp: Rasa writes a small global config there; /tmp is the only
# writable path (an emptyDir under Kubernetes, a tmpfs under docker-compose).
ENV PATH=/opt/rasa/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    RASA_CACHE_DIRECTORY=/tmp/rasa-cache \
    PYTHONUNBUFFERED=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SANIC_REQUEST_MAX_SIZE=2097152 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1
USER 10001:10001
EXPOSE 5005
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/', timeout=4)"]
ENTRYPOINT ["rasa"]
CMD ["run", "--model", "/app/models/assistant.tar.gz", "--endpoints", "/app/endpoints.yml", "--credentials", "/app/credentials.yml", "--port", "5005"]
