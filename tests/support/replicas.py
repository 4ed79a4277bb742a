"""Two Rasa processes on a real PostgreSQL tracker store and a real Redis lock store.

Shared by tests/stores and tests/ridgeline_rasa (tests/conftest.py registers these fixtures once,
so one test session starts them once). Both are started the way `make run` starts Rasa
(stack/services.py, rasa_project/credentials.yml) with the DB_* and REDIS_* variables set,
next to one action server whose LLM is a fake that answers slowly, so that a turn going to
the LLM takes long enough to overlap with another one. Replica B also has the Slack and
Telegram channels on, their outgoing API calls going to local fakes (tests/ridgeline_rasa/fake_apis.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from stack.process import Service, Stack
from tests.ridgeline_rasa.fake_apis import (SLACK_SECRET, SLACK_TOKEN, TELEGRAM_SECRET, TELEGRAM_TOKEN,
                                            TELEGRAM_WEBHOOK_URL, FakeSlack, FakeTelegram)
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.servers import PostgresServer, RedisServer, rasa_url, services_of, stack_config
from tools.procs import free_port

LLM_DELAY_S = 3.0
LLM_REPLY = "A down bag rated to minus ten degrees, and a good sleeping mat under it."


@dataclass
class Replicas:
    stack: Stack
    a: Service
    b: Service

    @property
    def url_a(self) -> str:
        return rasa_url(self.a)

    @property
    def url_b(self) -> str:
        return rasa_url(self.b)

    def restart_a(self) -> None:
        self.stack.stop([self.a.name])
        self.stack.start([self.a.name])


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow_llm():
    with FakeOpenAIServer() as server:
        server.behaviour.reply = LLM_REPLY
        server.behaviour.delay_s = LLM_DELAY_S
        yield server


@pytest.fixture(scope="session")
def fake_slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture(scope="session")
def fake_telegram():
    with FakeTelegram() as server:
        yield server


def channel_env(fake_slack: FakeSlack, fake_telegram: FakeTelegram) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_USE_THREADS": "true",
        "SLACK_API_URL": f"{fake_slack.url}/api/",
        "TELEGRAM_ACCESS_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TELEGRAM_WEBHOOK_URL": TELEGRAM_WEBHOOK_URL,
        "TELEGRAM_API_URL": fake_telegram.url,
    }


@pytest.fixture(scope="session")
def replicas(tmp_path_factory, postgres, redis, slow_llm, fake_slack, fake_telegram):
    root = tmp_path_factory.mktemp("replicas")
    stores = {**postgres.rasa_env, **redis.rasa_env}
    config_a = stack_config(root / "a", stores)
    config_b = dataclasses.replace(config_a, rasa_port=free_port(), run_dir=root / "b")
    services_a = services_of(config_a, stores, "-a")
    rasa_b = services_of(config_b, {**stores, **channel_env(fake_slack, fake_telegram)}, "-b")["rasa"]
    actions = services_a["actions"]
    actions.env.update({"ACTIONS_LLM_URL": slow_llm.base_url, "ORDERS_DB_URL": f"sqlite:///{root / 'orders.db'}"})
    with Stack([actions, services_a["rasa"], rasa_b], log_dir=root / "logs") as stack:
        yield Replicas(stack, services_a["rasa"], rasa_b)


@pytest.fixture(scope="session")
def channel_rasa(replicas) -> str:
    """The Rasa server with Slack and Telegram on."""
    return replicas.url_b
