"""The CPU engine (llama.cpp) in containers: the CPU image builds it, the chart converts the GGUF once.

Static checks of docker/llm.Dockerfile (no container engine here), of docker-compose.yml, and of
the chart's weights Job and LLM pod; plus one run of the Job's conversion command and the pod's
look-up with the real llm/gguf code on the tiny random model.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import CHART, REPO, RELEASE, VALIDATE_VERSIONS, by_name, of_kind, render, render_error
from tests.deploy.test_images import DOCKER, final_stages, stages

DOCKERFILE = DOCKER / "llm.Dockerfile"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cmake|make|ninja-build)\b")
CPU = "dev"  # the environment that runs the LLM on the CPU (values-dev.yaml: llm.gpu.enabled false)
MODEL_DIR = "/models/Qwen/Qwen2.5-0.5B-Instruct/main"


# --- The image --------------------------------------------------------------------------------------


def _cpu_build_stages() -> dict[str, dict]:
    """The stages the `cpu` target is built from (all before it but the GPU ones)."""
    all_stages = stages(DOCKERFILE)
    names = list(all_stages)
    return {n: all_stages[n] for n in names[: names.index("cpu")]}


def _arg_default(stage: dict, name: str) -> str:
    for word, rest in stage["steps"]:
        if word == "ARG" and rest.startswith(f"{name}="):
            return rest.split("=", 1)[1].strip('"')
    raise AssertionError(f"no ARG {name}")


def _cmake_args() -> list[str]:
    return _arg_default(_cpu_build_stages()["cpu-build"], "CMAKE_ARGS").split()


def _setup_sh_cmake_args() -> list[str]:
    match = re.search(r"export CMAKE_ARGS=\$\{CMAKE_ARGS:-([^}]*)\}", (REPO / "scripts" / "setup.sh").read_text())
    return match.group(1).split()


def test_cpu_image_builds_llama_cpp_python_from_source_portably():
    build = _cpu_build_stages()["cpu-build"]
    runs = [rest for word, rest in build["steps"] if word == "RUN"]
    (install,) = [r for r in runs if "pip install" in r]
    assert "requirements.py llm-cpu" in install, "the cpu extra (llama-cpp-python) is not installed"
    assert "--no-binary llama-cpp-python" in install and 'CMAKE_ARGS="${CMAKE_ARGS}"' in install
    args = _cmake_args()
    # for any node's CPU, not the build machine's (setup.sh builds natively for the checkout's machine)
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_NATIVE=ON" not in args
    switched_off = {a for a in _setup_sh_cmake_args() if a.endswith("=OFF")}
    assert switched_off <= set(args), f"setup.sh also switches off {switched_off - set(args)}"
    # the toolchain, from apt without recommends and without the package lists
    (apt,) = [r for r in runs if "apt-get install" in r]
    assert {"build-essential", "cmake"} <= set(apt.split()) and "--no-install-recommends" in apt
    assert "rm -rf /var/lib/apt/lists/*" in apt
    assert runs.index(apt) < runs.index(install)


def test_a_backend_dl_build_needs_a_runtime_that_loads_its_backends():
    """GGML_BACKEND_DL=ON (with GGML_CPU_ALL_VARIANTS: kernels picked per CPU at run time) builds the CPU
    backend as a module that only ggml_backend_load_all() loads; without that call every model load fails
    with "no backends are loaded". llama-cpp-python 0.3.36 does not call it, so llm/ would have to."""
    if "-DGGML_BACKEND_DL=ON" not in _cmake_args():
        return
    runtime = "".join(p.read_text() for p in (REPO / "llm").rglob("*.py"))
    assert "ggml_backend_load_all" in runtime, "GGML_BACKEND_DL=ON, but nothing loads the backends"


def test_cpu_image_carries_llama_cpps_converter_inside_its_venv(monkeypatch):
    from llm.gguf import tools

    build_stages = _cpu_build_stages()
    fetches = [(name, rest) for name, stage in build_stages.items() for word, rest in stage["steps"]
               if word == "RUN" and "-m llm convert --fetch-tools" in rest]
    assert len(fetches) == 1, "python -m llm convert --fetch-tools runs once, in a build stage"
    name, command = fetches[0]
    assert build_stages[name]["base"] == "cpu-build" and command.startswith("/opt/venv/bin/python ")
    copies = [rest.split() for word, rest in build_stages[name]["steps"] if word == "COPY"]
    assert ["llm/", "./llm/"] in copies and ["ridgeline/", "./ridgeline/"] in copies
    # where --fetch-tools writes: <sys.prefix of the venv's python>/share/llama-cpp-convert/<version>
    monkeypatch.delenv("LLM_GGUF_TOOLS", raising=False)
    where = tools.tools_dir("0.0.0").relative_to(Path(sys.prefix))
    assert where == Path("share/llama-cpp-convert/0.0.0")
    final = final_stages(DOCKERFILE)["cpu"]["steps"]
    converter = f"/opt/venv/{where.parent}"
    assert ("COPY", f"--from={name} {converter} {converter}") in final
    assert ("COPY", "--from=cpu-build /opt/venv /opt/venv") in final


def test_cpu_image_has_no_compiler_and_a_writable_gguf_cache():
    final = final_stages(DOCKERFILE)["cpu"]
    assert stages(DOCKERFILE)["cpu"]["base"].startswith("python:3.11.")
    for word, rest in final["steps"]:
        if word == "RUN":
            installs = re.findall(r"apt-get install ([^&;|]*)", rest)
            assert not any(COMPILERS.search(i) for i in installs), f"the final image gets a compiler: {rest}"
        if word == "COPY" and rest.startswith("--from="):
            assert rest.split()[0] in ("--from=cpu-build", "--from=cpu-convert-tools"), rest
    runs = " ".join(rest for word, rest in final["steps"] if word == "RUN")
    assert re.search(r"apt-get install -y --no-install-recommends libgomp1\b", runs), "ggml's OpenMP runtime"
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for word, rest in final["steps"] if word == "ENV")))
    cache = env["LLM_GGUF_CACHE"]
    assert cache.startswith("/data/"), "a path for a volume, not the read-only /app"
    assert re.search(rf"mkdir -p [^&]*{re.escape(cache)}\b", runs) and re.search(rf"chown app:app [^&]*{re.escape(cache)}\b", runs)


def test_gpu_image_stays_transformers_with_bitsandbytes():
    gpu_build = stages(DOCKERFILE)["gpu-build"]["steps"]
    (install,) = [rest for word, rest in gpu_build if word == "RUN" and "pip install" in rest]
    assert "requirements.py llm-gpu" in install and "CMAKE_ARGS" not in install
    assert not [rest for word, rest in gpu_build if word == "ARG" and rest.startswith("CMAKE_ARGS")]


def _image_gguf_cache() -> str:
    env = " ".join(rest for word, rest in final_stages(DOCKERFILE)["cpu"]["steps"] if word == "ENV")
    return re.search(r"\bLLM_GGUF_CACHE=(\S+)", env).group(1)


def test_compose_keeps_the_cpu_engines_gguf_on_a_named_volume():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    cpu = compose["services"]["llm-cpu"]
    assert cpu["build"]["target"] == "cpu"
    assert "LLM_GGUF_CACHE" not in (cpu.get("environment") or {}), "the image's path, written once"
    cache = _image_gguf_cache()
    mounts = {v.split(":")[1]: v.split(":") for v in cpu["volumes"]}
    source, _, *mode = mounts[cache]
    assert source in compose["volumes"] and mode != ["ro"], f"{cache} is not a writable named volume"
    # the anchor's mounts are still there (a service's `volumes` replaces the merged list)
    assert {"/data/hf", "/models"} <= set(mounts)


# --- The chart ----------------------------------------------------------------------------------------


def _job(objects) -> dict:
    (job,) = of_kind(objects, "Job")
    return job


def _llm(objects) -> dict:
    return by_name(objects, "Deployment", f"{RELEASE}-llm")["spec"]["template"]["spec"]


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_the_cpu_engine_converts_once_in_the_weights_job():
    objects = render(CPU)
    job = _job(objects)["spec"]["template"]["spec"]
    assert [c["name"] for c in job["initContainers"]] == ["download"], "the download comes first"
    (convert,) = job["containers"]
    assert convert["name"] == "convert"
    llm = _llm(objects)
    assert convert["image"] == llm["containers"][0]["image"] == job["initContainers"][0]["image"]
    assert convert["image"].endswith("-cpu")
    env = {e["name"]: e["value"] for e in convert["env"]}
    script = " ".join(convert["command"][2:] + convert.get("args", []))
    assert convert["command"][:2] == ["sh", "-c"]
    assert 'python -m llm convert --model "$MODEL_DIR" --quant "$GGUF_QUANT" --cache "$GGUF_DIR"' in script
    assert env["MODEL_DIR"] == MODEL_DIR and env["GGUF_QUANT"] == VALUES["llm"]["cpu"]["ggufQuant"] == "q4_k_m"
    # the marker: written only when the conversion succeeded, inside the GGUF folder (a file directly in the
    # model folder would change the checksum ensure_gguf keys the GGUF by)
    convert_at, marker_at = script.index("llm convert"), script.index('> "$GGUF_MARKER"')
    assert convert_at < marker_at and "&&" in script[convert_at:marker_at]
    assert Path(env["GGUF_MARKER"]).parent == Path(env["GGUF_DIR"]) == Path(MODEL_DIR) / "gguf"
    mounts = {m["mountPath"]: m for m in convert["volumeMounts"]}
    assert not mounts["/models"].get("readOnly")
    requests = convert["resources"]["requests"]
    assert requests == VALUES["llm"]["cpu"]["convert"]["resources"]["requests"]


def test_the_pod_reads_the_folder_the_job_converted_into():
    objects = render(CPU)
    env = {e["name"]: e["value"] for e in _job(objects)["spec"]["template"]["spec"]["containers"][0]["env"]}
    llm = _llm(objects)
    container = llm["containers"][0]
    args = container["args"]
    assert _flag(args, "--model") == env["MODEL_DIR"]
    assert _flag(args, "--gguf-cache") == env["GGUF_DIR"], "the pod would convert again, somewhere else"
    assert _flag(args, "--gguf-quant") == env["GGUF_QUANT"]
    # the init container waits for the download's marker and for the conversion's, written last
    (wait,) = llm["initContainers"]
    assert wait["command"][-2:] == [MODEL_DIR, env["GGUF_MARKER"]]
    compile(wait["command"][2], "wait-for-weights", "exec")
    # the weights read-only; the GGUF folder of the same volume writable (ensure_gguf opens a lock file there)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    gguf = mounts[env["GGUF_DIR"]]
    assert gguf["name"] == "weights" and not gguf.get("readOnly")
    assert "/models/" + gguf["subPath"] == env["GGUF_DIR"]
    # nothing of it on the pod's small /tmp
    (tmp,) = [v for v in llm["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == "4Gi"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_gpu_pods_convert_nothing(env):
    objects = render(env)
    job = _job(objects)["spec"]["template"]["spec"]
    assert "initContainers" not in job and [c["name"] for c in job["containers"]] == ["download"]
    llm = _llm(objects)
    assert "--gguf-cache" not in llm["containers"][0]["args"]
    assert len(llm["initContainers"][0]["command"]) == 4, "waits for the download's marker only"
    assert llm["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    assert [m["mountPath"] for m in llm["containers"][0]["volumeMounts"]] == ["/models", "/tmp", "/dev/shm"]


def test_another_gguf_type_is_another_job_and_marker():
    base, q8 = render(CPU), render(CPU, sets=("llm.cpu.ggufQuant=q8_0",))
    assert _job(base)["metadata"]["name"] != _job(q8)["metadata"]["name"], "Jobs are immutable"
    q8_env = {e["name"]: e["value"] for e in _job(q8)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert q8_env["GGUF_QUANT"] == "q8_0" and "q8_0" in q8_env["GGUF_MARKER"]
    assert _flag(_llm(q8)["containers"][0]["args"], "--gguf-quant") == "q8_0"
    assert _llm(q8)["initContainers"][0]["command"][-1] == q8_env["GGUF_MARKER"]
    # GPU values: the setting changes nothing
    assert _job(render("staging"))["metadata"]["name"] == _job(render("staging", sets=("llm.cpu.ggufQuant=q8_0",)))["metadata"]["name"]
    assert "/llm/cpu/ggufQuant" in render_error(CPU, sets=("llm.cpu.ggufQuant=q5_0",))


def test_without_the_download_job_the_pod_waits_for_the_weights_only():
    objects = render(CPU, sets=("llm.weights.download.enabled=false",))
    assert not of_kind(objects, "Job")
    llm = _llm(objects)
    assert llm["initContainers"][0]["command"][-1] == MODEL_DIR
    assert _flag(llm["containers"][0]["args"], "--gguf-cache") == f"{MODEL_DIR}/gguf"


@pytest.mark.parametrize("sets", [(), ("llm.weights.download.enabled=false",), ("llm.cpu.ggufQuant=bf16",)])
def test_cpu_renders_match_the_kubernetes_schemas(sets):
    for obj in render(CPU, sets=sets):
        if obj["kind"] in {"ServiceMonitor", "PrometheusRule", "VerticalPodAutoscaler"}:
            continue
        kubernetes_validate.validate(obj, VALIDATE_VERSIONS[-1], strict=True)


# --- The Job's command and the pod's look-up, with the real conversion code ------------------------------


def test_job_conversion_is_found_by_the_pods_ensure_gguf(tmp_path):
    """Runs the rendered convert command (the download already done: weights and `.complete` there) on the
    tiny model, then what the pod runs at start: ensure_gguf with the pod's --gguf-cache. It converts
    nothing, and the only file it touches is its lock (which is why the pod's GGUF mount is writable)."""
    pytest.importorskip("llama_cpp", reason="the cpu extra (make setup) converts the GGUF")
    from llm.gguf import cache, tools
    from tools.testing.tiny_model import build_tiny_model

    try:
        tools.converter_dir()
    except tools.ConverterMissing as missing:
        pytest.skip(str(missing))
    objects = render(CPU)
    convert = _job(objects)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in convert["env"]}
    model_dir = build_tiny_model(tmp_path / env["MODEL_DIR"].lstrip("/"), seed=0)
    (model_dir / ".complete").write_text(env["MODEL_VERSION"] + "\n")  # download-weights.py's marker
    local = {k: str(tmp_path / v.lstrip("/")) if v.startswith("/models/") else v for k, v in env.items()}
    bin_dir = str(Path(sys.executable).parent)
    run_env = {**os.environ, **{k: local[k] for k in ("MODEL_VERSION", "MODEL_DIR", "GGUF_DIR", "GGUF_QUANT", "GGUF_MARKER")},
               "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "LLM_GGUF_QUIET": "1",
               "PYTHONPATH": str(REPO)}
    result = subprocess.run(convert["command"] + convert["args"], env=run_env, cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    marker = Path(local["GGUF_MARKER"])
    assert marker.read_text().split() == [env["MODEL_VERSION"], env["GGUF_QUANT"]]

    pod_args = _llm(objects)["containers"][0]["args"]
    root = Path(str(tmp_path) + _flag(pod_args, "--gguf-cache"))
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    found = cache.ensure_gguf(str(model_dir), _flag(pod_args, "--gguf-quant"), root=root)
    assert found.reused and found.path.parent.parent == root and found.path.name == "model-q4_k_m.gguf"
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert set(after) == set(before)
    assert [p.name for p in after if after[p] != before[p]] in ([], [".lock"])
    # the 16-bit intermediate stays: ensure_gguf looks for it before the quantized file
    assert len(list(root.glob("*/model-*16.gguf"))) == 1
    assert shlex.split(result.stdout.strip())[-1] == str(found.path)
