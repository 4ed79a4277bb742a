#!/usr/bin/env bash
# Install the Debian packages that are missing (`make setup`: the webchat's and the compilers; `make test`: all).
#   scripts/system_deps.sh        nodejs, npm, build-essential, cmake (what `make run` needs)
#   scripts/system_deps.sh test   also the servers and browser the tests start
#   postgresql                PostgreSQL server: tests/stores, tests/channels start their own on loopback
#   redis-server              Redis: the lock store tests
#   chromium, chromium-driver the webchat browser test (headless Chromium driven by Selenium)
#   prometheus                its promtool: `promtool test rules` on the alerts (tests/deploy/test_monitoring.py);
#                             on a machine with systemd, Debian also starts a Prometheus server on :9090
#   nodejs, npm               installs the webchat widget (web/package-lock.json)
#   build-essential, cmake    compile llama-cpp-python from its sdist (the CPU engine; scripts/setup.sh)
# Idempotent and quick when everything is there: it checks commands, not the package database,
# and runs `apt-get update` only when a package it needs is unknown to apt.
# SYSTEM_DEPS=skip skips it (e.g. a machine where you installed these another way).
set -euo pipefail

say() { printf '\033[1msystem deps:\033[0m %s\n' "$*"; }

[[ "${SYSTEM_DEPS:-}" == "skip" ]] && exit 0

have_postgres() {
  command -v postgres >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

missing=()
if [[ "${1:-}" == "test" ]]; then
  have_postgres || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi
command -v g++ >/dev/null 2>&1 || missing+=(build-essential)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  say "missing ${missing[*]} and this is not a Debian/Ubuntu machine; install them with your package manager" >&2
  say "(or set SYSTEM_DEPS=skip to go on without: the tests that need them will fail)." >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "missing ${missing[*]}; install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# apt knows a package when `apt-cache policy` shows a candidate; otherwise its lists are empty or stale.
needs_update=0
for package in "${missing[@]}"; do
  if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    needs_update=1
  fi
done
if [[ $needs_update -eq 1 ]]; then
  say "apt-get update (apt does not know some of: ${missing[*]})…"
  "${sudo[@]}" apt-get update -qq
fi
say "installing ${missing[*]} (a few minutes the first time)…"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
say "installed ${missing[*]}"
