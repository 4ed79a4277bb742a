"""The whole stack on loopback: tiny LLM service, action server, Rasa with the trained model, webchat."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tools.testing.tiny_model import build_tiny_model
from stack.process import Stack
from stack.services import DEFAULT_RASA_MODEL, StackConfig, build_services
from tests.support.servers import RASA_TOKEN, domain_responses
from tools.procs import free_port

RASA_JWT_SECRET = "test-jwt-secret-for-rasa"


@pytest.fixture(scope="session")
def responses() -> dict[str, list[str]]:
    return domain_responses()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not DEFAULT_RASA_MODEL.exists():
        pytest.fail(f"No trained Rasa model at {DEFAULT_RASA_MODEL}; run `make rasa-model` (make test does).")
    root = tmp_path_factory.mktemp("stack")
    model_dir = build_tiny_model(root / "tiny-qwen2", seed=0)
    config = StackConfig(
        llm_model=str(model_dir),
        rasa_port=free_port(),
        actions_port=free_port(),
        llm_port=free_port(),
        webchat_port=free_port(),
        venv=Path(os.environ.get("VENV", StackConfig.venv)).absolute(),
        rasa_venv=Path(os.environ.get("RASA_VENV", StackConfig.rasa_venv)).absolute(),
        run_dir=root / "run",
        llm_timeout_s=15.0,
        rasa_auth_token=RASA_TOKEN,
        rasa_jwt_secret=RASA_JWT_SECRET,
    )
    services = build_services(config)
    by_name = {s.name: s for s in services}
    by_name["actions"].env["ORDERS_DB_URL"] = f"sqlite:///{root / 'orders.db'}"
    by_name["actions"].env["ACTIONS_LLM_MAX_TOKENS"] = "24"
    by_name["llm"].env["LLM_CPU_THREADS"] = "1"  # the tiny model gains nothing from a second core
    with Stack(services, log_dir=root / "logs") as running:
        yield running


class Conversation:
    """One sender talking to Rasa's REST channel."""

    def __init__(self, rasa_url: str, sender: str) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.sender = sender

    def say(self, text: str) -> list[str]:
        response = httpx.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
        response.raise_for_status()
        return [m["text"] for m in response.json() if "text" in m]


@pytest.fixture
def conversation(stack, request) -> Conversation:
    rasa = next(s for s in stack.services if s.name == "rasa")
    return Conversation(f"http://127.0.0.1:{rasa.port}", sender=request.node.name)


def service_url(stack: Stack, name: str) -> str:
    service = next(s for s in stack.services if s.name == name)
    return f"http://127.0.0.1:{service.port}"
