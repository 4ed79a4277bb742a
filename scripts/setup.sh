#!/usr/bin/env bash
# Create both virtual environments, idempotently (`make setup`).
#   .venv-rasa  Python 3.10, Rasa 3.6 (requirements-rasa.txt) and the Rasa extension (packaging/ridgeline-rasa)
#   .venv       Python 3.11-3.13, this project editable with its dev, train and cpu extras
#               (cpu: llama-cpp-python, compiled from its sdist with CMAKE_ARGS below, ~7 min on 2 cores,
#               and llama.cpp's GGUF converter extracted from the same sdist: `python -m llm convert --fetch-tools`)
# A venv is updated only when its requirements change (a stamp inside it holds their hash);
# `make clean-venvs` removes both for a rebuild from scratch.
# VENV / RASA_VENV move them (CI keeps them in a cache folder between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RASA_VENV=${RASA_VENV:-.venv-rasa}
EXTRAS=${EXTRAS:-dev,train,cpu}
export PIP_DISABLE_PIP_VERSION_CHECK=1
# llama-cpp-python's build (the cpu extra): the CPU engine for this machine's instruction set, without
# CUDA, llava or llama.cpp's own programs. Set CMAKE_ARGS yourself to build otherwise (e.g. a portable
# -DGGML_NATIVE=OFF for an image that runs elsewhere).
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

ensure_venv() {  # $1 dir, $2 python, $3 stamp value, $4 install command (run with the venv's pip)
  local dir=$1 python=$2 stamp=$3 install=$4
  if [[ -f "$dir/.setup-stamp" && "$(cat "$dir/.setup-stamp")" == "$stamp" ]]; then
    return 0
  fi
  if "$dir/bin/python" -c "" 2>/dev/null; then
    say "updating $dir (its requirements changed)…"   # pip adds what is new; no rebuild
  else
    say "creating $dir with $("$python" --version 2>&1) (a few minutes the first time)…"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip wheel setuptools
  fi
  (set -x; eval "$install")
  echo "$stamp" > "$dir/.setup-stamp"
}

py310=$(scripts/find_python.sh 3.10 3.10) || {
  cat >&2 <<'MSG'
setup: no Python 3.10 found. Rasa Open Source 3.6 runs only on Python 3.8-3.10.
  Install one, then run `make setup` again, e.g.:
    pyenv install 3.10        (https://github.com/pyenv/pyenv)
    uv python install 3.10    (https://docs.astral.sh/uv/)
    apt-get install python3.10 python3.10-venv   (distributions that ship it)
  Or point PYTHON310=/path/to/python3.10 at one.
MSG
  exit 1
}
py310=${PYTHON310:-$py310}
py3=${PYTHON3:-$(scripts/find_python.sh 3.11 3.13)} || {
  echo "setup: no Python 3.11-3.13 found for the action server and LLM service; install one (pyenv install 3.11, uv python install 3.11) or set PYTHON3=/path/to/python3.11." >&2
  exit 1
}

# Rasa's venv: Rasa, and the project's Rasa extension (ridgeline_rasa, with the ground floor
# ridgeline) installed editable from packaging/ridgeline-rasa/ (no build isolation: no download).
RASA_EXTENSION=packaging/ridgeline-rasa
ensure_venv "$RASA_VENV" "$py310" "$(hash_of requirements-rasa.txt "$RASA_EXTENSION/pyproject.toml")" \
  '"$RASA_VENV/bin/pip" install -q "pip<24.1" && "$RASA_VENV/bin/pip" install -q -r requirements-rasa.txt && "$RASA_VENV/bin/pip" install -q --no-build-isolation --no-deps -e "$RASA_EXTENSION"'
ensure_venv "$VENV" "$py3" "$(hash_of pyproject.toml)-$EXTRAS" \
  '"$VENV/bin/pip" install -q --no-binary llama-cpp-python -e ".[$EXTRAS]"'

# The editable install points at this checkout; a venv reused from a cache may point elsewhere.
if [[ "$("$VENV/bin/python" -I -c 'import actions, os; print(os.path.dirname(os.path.dirname(actions.__file__)))' 2>/dev/null)" != "$PWD" ]]; then
  "$VENV/bin/pip" install -q --no-deps -e .
fi
if [[ "$("$RASA_VENV/bin/python" -I -c 'import ridgeline_rasa, os; print(os.path.dirname(os.path.dirname(ridgeline_rasa.__file__)))' 2>/dev/null)" != "$PWD" ]]; then
  "$RASA_VENV/bin/pip" install -q --no-build-isolation --no-deps -e "$RASA_EXTENSION"
fi
# llama.cpp's converter (HF -> GGUF) is in llama-cpp-python's sdist, not in the installed package.
if [[ ",$EXTRAS," == *",cpu,"* ]]; then
  "$VENV/bin/python" -m llm convert --fetch-tools >/dev/null
fi
say "virtualenvs ready: $VENV ($("$VENV/bin/python" --version)), $RASA_VENV (rasa $("$RASA_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rasa"))'))"
