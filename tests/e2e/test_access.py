"""Who may call which service: Rasa's API token and JWTs, open webhooks, the action server's token."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import RASA_JWT_SECRET, service_url
from tests.support.servers import RASA_TOKEN, hs256_jwt

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def admin(secret: str = RASA_JWT_SECRET) -> dict:
    token = hs256_jwt({"user": {"username": "operator", "role": "admin"}, "exp": int(time.time()) + 300}, secret)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/status", "/domain", "/conversations/anyone/tracker"])
def test_rasa_api_needs_its_token_or_a_jwt(stack, path):
    rasa = service_url(stack, "rasa")
    client = httpx.Client(base_url=rasa, headers={"Accept": "application/json"}, timeout=30)
    assert client.get(path).status_code == 401
    assert client.get(path, params={"token": "wrong"}).status_code == 401
    assert client.get(path, headers=admin("another-secret")).status_code == 401
    assert client.get(path, params={"token": RASA_TOKEN}).status_code == 200
    assert client.get(path, headers=admin()).status_code == 200


def test_a_jwt_for_one_user_reads_only_that_user_s_conversation(stack):
    rasa = service_url(stack, "rasa")
    own = {"Authorization": "Bearer " + hs256_jwt({"user": {"username": "visitor-7", "role": "user"},
                                             "exp": int(time.time()) + 300}, RASA_JWT_SECRET)}
    assert httpx.get(f"{rasa}/conversations/visitor-7/tracker", headers=own, timeout=30).status_code == 200
    assert httpx.get(f"{rasa}/conversations/visitor-8/tracker", headers=own, timeout=30).status_code == 403


def test_health_and_channel_webhooks_stay_open(stack):
    rasa = service_url(stack, "rasa")
    assert httpx.get(f"{rasa}/", timeout=30).status_code == 200
    reply = httpx.post(f"{rasa}/webhooks/rest/webhook", json={"sender": "open-door", "message": "hi"}, timeout=60)
    assert reply.status_code == 200 and reply.json()


def test_the_action_server_answers_only_rasa(stack):
    actions = service_url(stack, "actions")
    call = {"next_action": "action_human_handoff", "tracker": {"sender_id": "x", "events": []}, "domain": {}}
    assert httpx.post(f"{actions}/webhook", json=call, timeout=30).status_code == 401
    assert httpx.get(f"{actions}/health", timeout=30).status_code == 200
