#!/usr/bin/env bash
# find_python.sh MIN MAX  -> prints the path of a CPython whose minor version is in [MIN, MAX]
# (e.g. `find_python.sh 3.10 3.10`), looking on PATH, then in pyenv, then in uv.
set -euo pipefail
min=$1 max=$2

version_ok() {  # $1: interpreter
  "$1" -c "import sys; v=sys.version_info[:2]; lo=tuple(map(int,'$min'.split('.'))); hi=tuple(map(int,'$max'.split('.'))); sys.exit(0 if lo<=v<=hi else 1)" 2>/dev/null
}

candidates=()
IFS=. read -r major lo <<<"$min"; IFS=. read -r _ hi <<<"$max"
for ((minor = hi; minor >= lo; minor--)); do candidates+=("python$major.$minor"); done
candidates+=(python3)

for name in "${candidates[@]}"; do
  path=$(command -v "$name" 2>/dev/null) || continue
  if version_ok "$path"; then echo "$path"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for ((minor = hi; minor >= lo; minor--)); do
    for path in $(ls -d "$root"/versions/"$major.$minor".*/bin/python"$major.$minor" 2>/dev/null | sort -rV); do
      if version_ok "$path"; then echo "$path"; exit 0; fi
    done
  done
fi
if command -v uv >/dev/null 2>&1; then
  for ((minor = hi; minor >= lo; minor--)); do
    path=$(uv python find "$major.$minor" 2>/dev/null) || continue
    if version_ok "$path"; then echo "$path"; exit 0; fi
  done
fi
exit 1
