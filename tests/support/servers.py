"""Real servers for the store and channel tests: PostgreSQL, Redis and Rasa on loopback.

PostgreSQL and Redis come from Debian's packages (scripts/system_deps.sh installs them);
each test session starts its own on free ports with its data in a temporary folder, and
stops it afterwards. PostgreSQL refuses to run as root, so as root it runs as the
`postgres` user that Debian's package creates.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import hashlib
import hmac
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from stack.process import Service
from stack.services import DEFAULT_RASA_MODEL, RASA_PROJECT, StackConfig, build_services
from tools.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


def wait_until(condition, timeout_s: float = 30.0, interval_s: float = 0.1, what: str = "the condition"):
    """Poll ``condition()`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(interval_s)


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    pytest.fail("PostgreSQL is not installed: run scripts/system_deps.sh (make setup does), "
                "or apt-get install postgresql.")


class PostgresServer:
    """A throw-away PostgreSQL cluster: trust authentication, loopback only, no fsync."""

    user = "rasa"
    database = "rasa"

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pytest-postgres-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("Running as root, PostgreSQL needs the `postgres` user that Debian's postgresql "
                            "package creates: run scripts/system_deps.sh, or run the tests as another user.")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> "PostgresServer":
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.database)
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        """SQLAlchemy URL for psycopg 3 (the .venv's driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def rasa_env(self) -> dict[str, str]:
        """The DB_* variables `make run` (stack/services.py) turns into Rasa's tracker store."""
        return {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.port), "DB_USER": self.user, "DB_NAME": self.database}

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=self.database) as conn:
            return conn.execute(sql, params).fetchall()


# ---------------------------------------------------------------- Redis


class RedisServer:
    """A throw-away Redis on loopback, nothing persisted."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run scripts/system_deps.sh (make setup does), "
                        "or apt-get install redis-server.")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pytest-redis-"))
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(self.root)]
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(self.command, stdout=(self.root / "log").open("w"),
                                        stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def rasa_env(self) -> dict[str, str]:
        """The REDIS_* variables `make run` (stack/services.py) turns into Rasa's lock store."""
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port), "REDIS_DB": "0"}

    def command_reply(self, *args: str) -> bytes:
        """Send one command (RESP) and return the raw reply line: enough for EXISTS, KEYS, PING."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(payload)
            return sock.recv(65536)


# ---------------------------------------------------------------- Rasa


def rasa_model() -> Path:
    if not DEFAULT_RASA_MODEL.exists():
        pytest.fail(f"No trained Rasa model at {DEFAULT_RASA_MODEL}; run `make rasa-model` (make test does).")
    return DEFAULT_RASA_MODEL


# Rasa's HTTP API token in every Rasa the tests start (the channel webhooks need none).
RASA_TOKEN = "test-rasa-api-token"


def hs256_jwt(payload: dict, secret: str) -> str:
    """A JSON Web Token signed with HMAC-SHA256, as an identity provider would make it for Rasa."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{part(json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def stack_config(run_dir: Path, env: dict[str, str], **overrides) -> StackConfig:
    """A StackConfig for tests: free ports, this checkout's venvs, the stores of ``env``."""
    config = StackConfig.from_env({"VENV": os.environ.get("VENV", ""), "RASA_VENV": os.environ.get("RASA_VENV", ""),
                                   "RASA_AUTH_TOKEN": RASA_TOKEN, **env})
    return dataclasses.replace(config, rasa_port=free_port(), actions_port=free_port(), llm_port=free_port(),
                               webchat_port=free_port(), run_dir=run_dir, rasa_model=rasa_model(), **overrides)


def services_of(config: StackConfig, env: dict[str, str], name_suffix: str = "") -> dict[str, Service]:
    """The services `make run` would start for ``config``, each with ``env`` added (and renamed)."""
    services = {}
    for service in build_services(config):
        services[service.name] = dataclasses.replace(service, name=service.name + name_suffix,
                                                     env={**service.env, **env})
    return services


def rasa_url(service: Service) -> str:
    return f"http://127.0.0.1:{service.port}"


def domain_responses() -> dict[str, list[str]]:
    """Every response text in the domain, by response name."""
    responses: dict[str, list[str]] = {}
    for path in sorted((RASA_PROJECT / "domain").glob("*.yml")):
        for name, variants in (yaml.safe_load(path.read_text()).get("responses") or {}).items():
            responses.setdefault(name, []).extend(v["text"] for v in variants if "text" in v)
    return responses


def say(url: str, sender: str, text: str, timeout_s: float = 60.0) -> list[str]:
    """One user message over Rasa's REST channel; the texts of the replies."""
    response = httpx.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                          timeout=timeout_s)
    response.raise_for_status()
    return [m["text"] for m in response.json() if "text" in m]


def tracker(url: str, sender: str) -> dict:
    """The conversation's whole tracker from Rasa's HTTP API: events, slots, latest message."""
    response = httpx.get(f"{url}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=30)
    response.raise_for_status()
    return response.json()


def tracker_events(url: str, sender: str) -> list[dict]:
    return tracker(url, sender)["events"]


def turns(events: list[dict]) -> list[tuple[str, str]]:
    """The conversation as ("user" | "bot", text) pairs, in tracker order."""
    return [(e["event"], e.get("text") or "") for e in events if e["event"] in ("user", "bot")]
