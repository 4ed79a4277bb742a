#!/usr/bin/env bash
# Install the webchat widget (web/package-lock.json) into web/node_modules, idempotently (`make setup`).
# npm ci installs exactly the locked versions; it runs again only when the lock file changes
# (a stamp inside node_modules holds its hash). The page serves the widget from there: no CDN.
set -euo pipefail
cd "$(dirname "$0")/../web"
say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

stamp=$(sha256sum package-lock.json | cut -c1-16)
if [[ -f node_modules/.setup-stamp && "$(cat node_modules/.setup-stamp)" == "$stamp" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  say "npm is missing; install Node.js 18+ and npm (Debian: apt-get install nodejs npm), or run scripts/system_deps.sh." >&2
  exit 1
fi
say "installing the webchat widget (npm ci in web/)…"
# --omit=peer: the widget's bundle (lib/index.js) carries its own React.
# --ignore-scripts: nothing needs building; no install script of a dependency runs.
npm ci --ignore-scripts --omit=peer --no-audit --no-fund --loglevel=error
echo "$stamp" > node_modules/.setup-stamp
