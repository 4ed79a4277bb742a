"""Print one image's Python requirements, taken from pyproject.toml so the versions live in one place.

    python docker/requirements.py actions [pyproject.toml]   # the action server's subset
    python docker/requirements.py llm [pyproject.toml]       # everything the LLM service imports
    python docker/requirements.py llm-gpu [pyproject.toml]   # the same plus the `gpu` extra
    python docker/requirements.py llm-cpu [pyproject.toml]   # the same plus the `cpu` extra (llama.cpp)

The Dockerfiles run it in a build stage (Python 3.11+: tomllib), so a version bump in
pyproject.toml reaches the images without editing them.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# The action server needs neither torch nor transformers; leaving them out saves ~1 GB.
ACTIONS = {"rasa-sdk", "httpx", "sqlalchemy", "alembic", "bm25s", "psycopg", "pyyaml"}
# The LLM service: torch and transformers, plus sanic (brought by rasa-sdk) and prometheus-client.
LLM_EXCLUDE = {"httpx", "sqlalchemy", "alembic", "bm25s", "psycopg"}
# Each LLM image and the pyproject extra it adds: the CUDA image bitsandbytes, the CPU image llama.cpp
# (llama-cpp-python, built from its sdist by docker/llm.Dockerfile) and the GGUF converter's libraries.
LLM_IMAGES = {"llm": None, "llm-gpu": "gpu", "llm-cpu": "cpu"}


def name_of(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requirements(image: str, pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    deps = [re.sub(r"\s+#.*$", "", d).strip() for d in project["dependencies"]]
    if image == "actions":
        chosen = [d for d in deps if name_of(d) in ACTIONS]
        missing = ACTIONS - {name_of(d) for d in chosen}
        if missing:
            raise SystemExit(f"requirements.py: pyproject.toml no longer lists {sorted(missing)}; update ACTIONS.")
        return chosen
    if image in LLM_IMAGES:
        chosen = [d for d in deps if name_of(d) not in LLM_EXCLUDE]
        extra = LLM_IMAGES[image]
        if extra:
            chosen += [re.sub(r"\s+#.*$", "", d).strip() for d in project["optional-dependencies"][extra]]
        return chosen
    raise SystemExit(f"requirements.py: unknown image {image!r}; use actions, {', '.join(LLM_IMAGES)}.")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    pyproject = Path(args[1]) if len(args) > 1 else Path(__file__).resolve().parent.parent / "pyproject.toml"
    print("\n".join(requirements(args[0], pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
