# syntax=docker/dockerfile:1
# The action server (rasa-sdk, wrapped by actions/server.py) with the project's actions package,
# the ground floor (ridgeline/: store knowledge, log masking, shared shapes) and the store facts.
#   docker build -f docker/actions.Dockerfile -t ridgeline/actions:0.1.0 .
# Only the action server's dependencies are installed (docker/requirements.py picks them from
# pyproject.toml): no torch, no transformers.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml docker/requirements.py /tmp/
RUN python /tmp/requirements.py actions /tmp/pyproject.toml > /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ridgeline-actions" \
      org.opencontainers.image.description="Action server (rasa-sdk) of the Ridgeline assistant" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY knowledge/ ./knowledge/
COPY ridgeline/ ./ridgeline/
COPY actions/ ./actions/
# The conversation review tool: the chart's retention CronJob runs `python -m review prune` in this image.
COPY review/ ./review/
# /app/var holds the SQLite orders database when ORDERS_DB_URL is not set.
RUN mkdir -p /app/var && chown app:app /app/var
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 5055
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=4 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5055/health', timeout=4)"]
# Needs ACTION_SERVER_TOKEN (the token Rasa sends); without it the server answers any caller.
ENTRYPOINT ["python", "-m", "actions.server"]
CMD ["--actions", "actions", "--port", "5055"]
