#!/usr/bin/env bash
# Train the Rasa model only when its inputs changed (`make rasa-model`).
# The checksum covers config, domain, NLU/stories/rules data and the Rasa version.
# RASA_MODEL_CACHE (a folder) keeps models by checksum, so CI reuses them across clones.
# Rasa's environment and `rasa train` arguments: ridgeline_rasa/launch.py (python -m ridgeline_rasa.launch train).
set -euo pipefail
cd "$(dirname "$0")/.."
RASA_VENV=$(realpath -m "${RASA_VENV:-.venv-rasa}")
MODEL=rasa_project/models/assistant.tar.gz
STAMP=rasa_project/models/.checksum

checksum=$(
  { cat requirements-rasa.txt
    find rasa_project/config.yml rasa_project/domain rasa_project/data -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 \
      | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-32
)
if [[ -f "$MODEL" && -f "$STAMP" && "$(cat "$STAMP")" == "$checksum" ]]; then
  echo "rasa-model: $MODEL is up to date"
  exit 0
fi
mkdir -p rasa_project/models
if [[ -n "${RASA_MODEL_CACHE:-}" && -f "$RASA_MODEL_CACHE/$checksum.tar.gz" ]]; then
  cp "$RASA_MODEL_CACHE/$checksum.tar.gz" "$MODEL"
  echo "$checksum" > "$STAMP"
  echo "rasa-model: reused $RASA_MODEL_CACHE/$checksum.tar.gz"
  exit 0
fi
echo "rasa-model: training (data or config changed)…"
start=$(date +%s)
(cd rasa_project && "$RASA_VENV/bin/python" -m ridgeline_rasa.launch train --out models)
echo "$checksum" > "$STAMP"
echo "rasa-model: trained in $(( $(date +%s) - start )) s"
if [[ -n "${RASA_MODEL_CACHE:-}" ]]; then
  mkdir -p "$RASA_MODEL_CACHE" && cp "$MODEL" "$RASA_MODEL_CACHE/$checksum.tar.gz"
fi
