"""The four services of the assistant and how each is started on one machine.

Each service's process is given what its settings module says it reads of the supervisor's
environment (``READS`` of actions/config.py, llm/config.py and ridgeline_rasa/launch.py) and the
process basics, never the whole of it: an ``ACTIONS_*`` variable reaches the action server only,
``LLM_MODEL`` the LLM service only. The defaults are the services' own: a setting the supervisor
does not set is left to the service.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from actions import config as actions_config
from llm import config as llm_config
from ridgeline.settings import Allowlist, env_number
from ridgeline_rasa import launch
from stack.process import Service

REPO_ROOT = Path(__file__).resolve().parent.parent
RASA_PROJECT = REPO_ROOT / "rasa_project"
DEFAULT_RASA_MODEL = RASA_PROJECT / "models" / "assistant.tar.gz"
DEFAULT_LLM_MODEL = llm_config.DEFAULT_MODEL

# The stores Rasa uses when their variables are set (the names docker-compose and Helm use too):
# endpoints.yml key -> environment variable. Rasa reads the values from its environment.
TRACKER_STORE_VARS = {"url": "DB_HOST", "port": "DB_PORT", "username": "DB_USER",
                      "password": "DB_PASSWORD", "db": "DB_NAME", "login_db": "DB_LOGIN_DB"}
# Without DB_HOST: Rasa's SQL tracker store on a local SQLite file, in WAL mode (no disk wait per commit).
SQLITE_TRACKER_STORE = "ridgeline_rasa.tracker_store.SQLiteTrackerStore"
LOCK_STORE_VARS = {"url": "REDIS_HOST", "port": "REDIS_PORT", "password": "REDIS_PASSWORD", "db": "REDIS_DB"}

# Rasa's environment, as every Rasa process of the project gets it (ridgeline_rasa/launch.py). The
# extension (ridgeline_rasa) and the ground floor it imports are installed in .venv-rasa.
RASA_ENV = dict(launch.ENV)


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class StackConfig:
    llm_model: str = DEFAULT_LLM_MODEL
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    llm_port: int = llm_config.ServiceConfig.port
    webchat_port: int = 8080
    venv: Path = REPO_ROOT / ".venv"
    rasa_venv: Path = REPO_ROOT / ".venv-rasa"
    rasa_model: Path = DEFAULT_RASA_MODEL
    run_dir: Path = REPO_ROOT / "var" / "run"
    # The action server's budget per LLM call (ACTIONS_LLM_TIMEOUT_S); None: the action server's own
    # default, or ACTIONS_LLM_TIMEOUT_S of the supervisor's environment, which reaches it.
    llm_timeout_s: float | None = None
    llm_startup_timeout_s: float = 900.0  # a first download of real weights takes minutes
    # A crashed service is restarted (1, 2, 4 … s later) up to max_restarts times within
    # restart_window_s; one more crash in that window stops the assistant.
    max_restarts: int = 5
    restart_window_s: float = 300.0
    # Names of the DB_* / REDIS_* variables that are set: PostgreSQL tracker store when DB_HOST
    # is among them (else SQLite in run_dir), Redis lock store when REDIS_HOST is (else in memory).
    store_vars: tuple[str, ...] = ()
    # Access between the services: Rasa's HTTP API token (or a JWT secret), the token Rasa sends
    # to the action server, and the LLM service's API key. Unset tokens are made up per run.
    rasa_auth_token: str = field(default_factory=new_token, repr=False)
    rasa_jwt_secret: str | None = field(default=None, repr=False)
    action_server_token: str = field(default_factory=new_token, repr=False)
    llm_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "StackConfig":
        env = os.environ if env is None else env
        d = cls()

        def port(name: str, default: int) -> int:
            return env_number(env, name, int, default, at_least=1, at_most=65535, meaning="a TCP port")

        max_restarts = env_number(env, "STACK_MAX_RESTARTS", int, d.max_restarts, at_least=0, meaning=(
            "how often a crashed service is restarted within STACK_RESTART_WINDOW_S; "
            "0 stops the assistant at the first crash"))
        restart_window_s = env_number(env, "STACK_RESTART_WINDOW_S", float, d.restart_window_s, above=0,
                                      unit="seconds", meaning=(
                                          "the window in which STACK_MAX_RESTARTS restarts of one service are allowed"))
        return cls(
            llm_model=env.get("LLM_MODEL") or d.llm_model,
            host=env.get("STACK_HOST") or d.host,
            rasa_port=port("RASA_PORT", d.rasa_port),
            actions_port=port("ACTIONS_PORT", d.actions_port),
            llm_port=port("LLM_PORT", d.llm_port),
            webchat_port=port("WEBCHAT_PORT", d.webchat_port),
            venv=Path(env.get("VENV") or d.venv).absolute(),
            rasa_venv=Path(env.get("RASA_VENV") or d.rasa_venv).absolute(),
            rasa_model=Path(env.get("RASA_MODEL") or d.rasa_model).absolute(),
            run_dir=Path(env.get("STACK_RUN_DIR") or d.run_dir).absolute(),
            max_restarts=max_restarts,
            restart_window_s=restart_window_s,
            store_vars=tuple(name for name in (*TRACKER_STORE_VARS.values(), *LOCK_STORE_VARS.values())
                             if env.get(name)),
            rasa_auth_token=env.get("RASA_AUTH_TOKEN") or new_token(),
            rasa_jwt_secret=env.get("RASA_JWT_SECRET") or None,
            action_server_token=env.get("ACTION_SERVER_TOKEN") or new_token(),
            llm_api_key=env.get("LLM_API_KEY") or None,
        )


def store_endpoints(config: StackConfig) -> dict:
    """The tracker and lock store of this run, as endpoints.yml entries.

    Values of set variables are written as ``${VAR}``, which Rasa expands from its
    environment: no password lands on disk.
    """
    def from_vars(names: dict[str, str]) -> dict[str, str]:
        return {key: f"${{{var}}}" for key, var in names.items() if var in config.store_vars}

    if "DB_HOST" in config.store_vars:
        tracker = {"type": "SQL", "dialect": "postgresql", **from_vars(TRACKER_STORE_VARS)}
    else:
        tracker = {"type": SQLITE_TRACKER_STORE, "db": str(config.run_dir / "tracker.db")}
    stores = {"tracker_store": tracker}
    if "REDIS_HOST" in config.store_vars:
        stores["lock_store"] = {"type": "redis", **from_vars(LOCK_STORE_VARS), "key_prefix": "ridgeline"}
    return stores


def write_rasa_endpoints(config: StackConfig) -> Path:
    """rasa_project/endpoints.yml with the action server URL and the stores of this run."""
    endpoints = yaml.safe_load((RASA_PROJECT / "endpoints.yml").read_text()) or {}
    endpoints["action_endpoint"] = {
        **(endpoints.get("action_endpoint") or {}),
        "url": f"http://127.0.0.1:{config.actions_port}/webhook",
    }  # its headers carry ${ACTION_SERVER_TOKEN}, which Rasa reads from its environment
    endpoints.update(store_endpoints(config))
    config.run_dir.mkdir(parents=True, exist_ok=True)
    path = config.run_dir / "endpoints.yml"
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return path


def fresh_metrics_dir(config: StackConfig) -> Path:
    """An empty folder of this run where every Rasa worker writes its counts (PROMETHEUS_MULTIPROC_DIR).

    prometheus-client adds up every file in it for /metrics, so one scrape sees every Sanic worker; files
    of an earlier run would be added too, so it is emptied when the stack starts.
    """
    path = config.run_dir / "rasa-metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def build_services(config: StackConfig) -> list[Service]:
    python = str(config.venv / "bin" / "python")
    loopback = "127.0.0.1"
    public = "localhost" if config.host in {"127.0.0.1", "0.0.0.0"} else config.host
    # One API key for both sides, under each service's own name.
    llm_key = {"LLM_API_KEY": config.llm_api_key} if config.llm_api_key else {}
    actions_llm_key = {"ACTIONS_LLM_API_KEY": config.llm_api_key} if config.llm_api_key else {}
    timeout = {"ACTIONS_LLM_TIMEOUT_S": f"{config.llm_timeout_s:g}"} if config.llm_timeout_s is not None else {}
    llm = Service(
        name="llm",
        command=[python, "-m", "llm", "serve", "--model", config.llm_model,
                 "--host", config.host, "--port", str(config.llm_port)],
        health_url=f"http://{loopback}:{config.llm_port}/ready",
        url=f"http://{public}:{config.llm_port}",
        cwd=REPO_ROOT,
        env=dict(llm_key),
        reads=llm_config.READS,
        startup_timeout_s=config.llm_startup_timeout_s,
    )
    actions = Service(
        name="actions",
        command=[python, "-m", "actions.server", "--actions", "actions", "--port", str(config.actions_port)],
        health_url=f"http://{loopback}:{config.actions_port}/health",
        url=f"http://{public}:{config.actions_port}",
        cwd=REPO_ROOT,
        env={
            "ACTIONS_LLM_URL": actions_config.llm_url(loopback, config.llm_port),
            "ACTION_SERVER_TOKEN": config.action_server_token,
            **timeout,
            **actions_llm_key,
        },
        reads=actions_config.READS,
    )
    rasa = Service(
        name="rasa",
        # Rasa's API: --auth-token (as ?token=) and, when set, a JWT secret (Authorization: Bearer <jwt>).
        # Channel webhooks and / stay open.
        command=[str(config.rasa_venv / "bin" / "rasa"), *launch.server_args(
            config.rasa_model, write_rasa_endpoints(config), RASA_PROJECT / "credentials.yml", config.rasa_port,
            interface=config.host, api_token=config.rasa_auth_token, jwt_secret=config.rasa_jwt_secret, cors="*")],
        health_url=f"http://{loopback}:{config.rasa_port}/",  # open; Rasa listens once the model is loaded
        url=f"http://{public}:{config.rasa_port}",
        cwd=RASA_PROJECT,
        # The token and JWT secret also in the environment: the API guard (ridgeline_rasa/api_guard.py)
        # checks bodies only for callers Rasa will let in.
        env={**RASA_ENV, "ACTION_SERVER_TOKEN": config.action_server_token, "RASA_AUTH_TOKEN": config.rasa_auth_token,
             "PROMETHEUS_MULTIPROC_DIR": str(fresh_metrics_dir(config)),
             **({"RASA_JWT_SECRET": config.rasa_jwt_secret} if config.rasa_jwt_secret else {})},
        reads=launch.READS,  # with RASA_ENV over it: launch.environment
        startup_timeout_s=300.0,
    )
    webchat = Service(
        name="webchat",
        command=[python, "-m", "stack.webchat", "--host", config.host, "--port", str(config.webchat_port),
                 "--rasa-url", f"http://{public}:{config.rasa_port}"],
        health_url=f"http://{loopback}:{config.webchat_port}/",
        url=f"http://{public}:{config.webchat_port}",
        cwd=REPO_ROOT,
        reads=Allowlist(),  # its settings are its flags
    )
    return [llm, actions, rasa, webchat]

