"""Download one model version into the weights volume, once: the chart's download Job.

Environment: MODEL_REPOSITORY (Hugging Face repository), MODEL_REVISION (tag, branch or
commit), MODEL_DIR (the version's folder on the volume), HF_TOKEN (optional).
The files land in MODEL_DIR.partial (a retry resumes there), which is renamed to MODEL_DIR
and marked with MODEL_DIR/.complete only when everything is there; the LLM pods wait for
that marker, so they never load half a model.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

MARKER = ".complete"


def download(repository: str, revision: str, model_dir: Path, token: str | None, snapshot_download=None) -> bool:
    """Fetch the snapshot unless it is already complete; True when something was downloaded."""
    if (model_dir / MARKER).exists():
        print(f"{repository}@{revision} is already in {model_dir}; nothing to do.", flush=True)
        return False
    if snapshot_download is None:
        from huggingface_hub import snapshot_download
    partial = model_dir.with_name(model_dir.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    print(f"downloading {repository}@{revision} into {partial}", flush=True)
    snapshot_download(repo_id=repository, revision=revision, local_dir=str(partial), token=token)
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's resume bookkeeping
    if model_dir.exists():
        shutil.rmtree(model_dir)  # an earlier, unmarked copy
    partial.rename(model_dir)
    (model_dir / MARKER).write_text(f"{repository}@{revision}\n")
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    print(f"done: {size / 2**30:.2f} GiB in {time.monotonic() - start:.0f} s -> {model_dir}", flush=True)
    return True


def main() -> int:
    try:
        repository = os.environ["MODEL_REPOSITORY"]
        revision = os.environ["MODEL_REVISION"]
        model_dir = Path(os.environ["MODEL_DIR"])
    except KeyError as missing:
        print(f"download-weights: set {missing.args[0]}.", file=sys.stderr)
        return 2
    download(repository, revision, model_dir, os.environ.get("HF_TOKEN") or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
