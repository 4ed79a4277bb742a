"""Rasa 3.6 itself reads the endpoints files that docker-compose and the chart give it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO, RELEASE, by_name, render

RASA_PYTHON = Path(os.environ.get("RASA_VENV", REPO / ".venv-rasa")) / "bin" / "python"
ACTION_SERVER_TOKEN = "tok-3f9a"
STORE_ENV = {"ACTION_SERVER_TOKEN": ACTION_SERVER_TOKEN,
             "DB_HOST": "db.example", "DB_PORT": "5432", "DB_USER": "rasa", "DB_PASSWORD": "pw", "DB_NAME": "rasa",
             "REDIS_HOST": "redis.example", "REDIS_PORT": "6379", "REDIS_PASSWORD": "rpw", "REDIS_DB": "0"}

# Reads the file with Rasa's own loader (${VAR} expansion included), then builds the lock store
# (redis-py connects lazily) and checks the tracker store's arguments against SQLTrackerStore.
READ = """
import inspect, json, sys
from rasa.core.utils import AvailableEndpoints
from rasa.core.lock_store import LockStore
from rasa.core.tracker_store import SQLTrackerStore
e = AvailableEndpoints.read_endpoints(sys.argv[1])
lock = LockStore.create(e.lock_store)
accepted = set(inspect.signature(SQLTrackerStore.__init__).parameters)
print(json.dumps({
    "action": e.action.url,
    "action_headers": e.action.headers,
    "tracker": [e.tracker_store.type, e.tracker_store.url, e.tracker_store.kwargs],
    "tracker_kwargs_accepted": sorted(set(e.tracker_store.kwargs) - accepted),
    "lock": [type(lock).__name__, lock.key_prefix, lock.red.connection_pool.connection_kwargs.get("host")],
    "models": e.model.url if e.model else None,
}))
"""


def run_rasa_reader(path: Path, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    if not RASA_PYTHON.exists():
        pytest.skip(f"no Rasa virtualenv at {RASA_PYTHON.parent.parent} (make setup creates it)")
    env = {**os.environ, **STORE_ENV, "RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore"}
    for name in unset:
        env.pop(name, None)
    return subprocess.run([str(RASA_PYTHON), "-c", READ, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)


def read_with_rasa(path: Path) -> dict:
    result = run_rasa_reader(path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_sends_the_token(read: dict) -> None:
    """Rasa expanded ${ACTION_SERVER_TOKEN} from its environment into the header it sends."""
    assert read["action_headers"] == {"Authorization": f"Bearer {ACTION_SERVER_TOKEN}"}


@pytest.mark.slow
def test_rasa_reads_the_compose_endpoints():
    read = read_with_rasa(REPO / "docker" / "compose" / "rasa-endpoints.yml")
    assert read["action"] == "http://actions:5055/webhook"
    assert_sends_the_token(read)
    kind, host, kwargs = read["tracker"]
    assert (kind, host, kwargs["dialect"], kwargs["password"]) == ("SQL", "db.example", "postgresql", "pw")
    assert read["tracker_kwargs_accepted"] == []
    assert read["lock"] == ["RedisLockStore", "ridgeline:lock:", "redis.example"]


@pytest.mark.slow
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_rasa_reads_the_charts_endpoints(env, tmp_path):
    sets = ("rasa.model.serverUrl=https://models.example/rasa/model.tar.gz",)
    config = by_name(render(env, sets=sets), "ConfigMap", f"{RELEASE}-rasa")["data"]
    (tmp_path / "endpoints.yml").write_text(config["endpoints.yml"])
    read = read_with_rasa(tmp_path / "endpoints.yml")
    assert read["action"] == f"http://{RELEASE}-actions.ridgeline-{env}.svc:5055/webhook"
    assert_sends_the_token(read)
    assert read["tracker"][0] == "SQL" and read["tracker_kwargs_accepted"] == []
    if env == "prod":
        assert read["tracker"][2]["query"] == {"sslmode": "require"}
    assert read["lock"][0] == "RedisLockStore"
    assert read["models"] == "https://models.example/rasa/model.tar.gz"
    assert yaml.safe_load(config["credentials.yml"])["ridgeline_rasa.channels.socketio.SocketIOInput"]["session_persistence"] is True


@pytest.mark.slow
def test_rasa_refuses_to_start_without_the_action_server_token():
    """Why docker-compose requires ACTION_SERVER_TOKEN and the chart always sets it."""
    result = run_rasa_reader(REPO / "docker" / "compose" / "rasa-endpoints.yml", unset=("ACTION_SERVER_TOKEN",))
    assert result.returncode != 0
    assert "ACTION_SERVER_TOKEN" in result.stderr
