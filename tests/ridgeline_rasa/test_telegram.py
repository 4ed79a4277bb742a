"""Telegram's webhook against a running Rasa: the secret-token header, redeliveries, the sent reply."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.ridgeline_rasa.fake_apis import TELEGRAM_SECRET, TELEGRAM_TOKEN, TELEGRAM_WEBHOOK_URL
from tests.support.servers import domain_responses

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def update(update_id: int, chat_id: int, text: str) -> dict:
    """An Update as Telegram posts it for a private message."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Ann"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "from": person,
        "chat": {**person, "type": "private"}, "text": text}}


def post(rasa: str, body: dict, secret: str | None = TELEGRAM_SECRET) -> httpx.Response:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    return httpx.post(f"{rasa}/webhooks/telegram/webhook", json=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def responses() -> dict[str, list[str]]:
    return domain_responses()


def test_the_webhook_is_registered_with_its_secret_at_start(channel_rasa, fake_telegram):
    [call] = fake_telegram.wait_for("setWebhook")
    assert call.path == f"/bot{TELEGRAM_TOKEN}/setWebhook"
    assert call.params["url"] == TELEGRAM_WEBHOOK_URL
    assert call.params["secret_token"] == TELEGRAM_SECRET


def test_an_update_with_the_secret_is_answered(channel_rasa, fake_telegram, responses):
    assert post(channel_rasa, update(1001, 5001, "hi")).status_code == 200
    [call] = fake_telegram.wait_for("sendMessage", chat_id=5001)
    assert call.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert call.params["text"] in responses["utter_greet"]


def test_updates_without_the_secret_are_refused(channel_rasa, fake_telegram, responses):
    chat = 5002
    for number, secret in enumerate((None, "", "wrong-secret", TELEGRAM_SECRET + "x")):
        response = post(channel_rasa, update(2000 + number, chat, "hi"), secret=secret)
        assert response.status_code == 403, response.text
    assert post(channel_rasa, update(2100, chat, "thanks")).status_code == 200
    texts = [c.params["text"] for c in fake_telegram.wait_for("sendMessage", chat_id=chat)]
    assert len(texts) == 1 and texts[0] in responses["utter_youre_welcome"], texts


def test_a_redelivered_update_is_answered_once(channel_rasa, fake_telegram, responses):
    chat = 5003
    first = update(3001, chat, "hi")
    assert post(channel_rasa, first).status_code == 200
    assert post(channel_rasa, first).status_code == 200  # Telegram sends it again
    assert post(channel_rasa, update(3002, chat, "thanks")).status_code == 200
    texts = [c.params["text"] for c in fake_telegram.wait_for("sendMessage", count=2, chat_id=chat)]
    assert len(texts) == 2, texts
    assert texts[0] in responses["utter_greet"] and texts[1] in responses["utter_youre_welcome"]


def test_start_command_gets_the_greeting(channel_rasa, fake_telegram, responses):
    assert post(channel_rasa, update(4001, 5004, "/start")).status_code == 200
    [call] = fake_telegram.wait_for("sendMessage", chat_id=5004)
    assert call.params["text"] in responses["utter_greet"]
