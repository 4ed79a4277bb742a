"""Verdict buttons on Slack (interactive payloads, signed like every Slack request) and Telegram (an
inline keyboard and its callback query), against a running Rasa whose LLM is a fake: the click is
recorded on the tracker as the verdict on that reply and thanked, never answered by the LLM."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import httpx
import pytest

from ridgeline import feedback
from tests.ridgeline_rasa.fake_apis import SLACK_SECRET
from tests.ridgeline_rasa.test_slack import now_ts, slack_event
from tests.ridgeline_rasa.test_slack import post as post_slack_event
from tests.ridgeline_rasa.test_telegram import post as post_telegram
from tests.ridgeline_rasa.test_telegram import update
from tests.support.replicas import LLM_REPLY
from tests.support.servers import RASA_TOKEN, domain_responses

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUESTION = "what sleeping bag should I take for a winter camp in the Alps?"


@pytest.fixture(scope="module")
def thanks() -> list[str]:
    return domain_responses()[feedback.THANKS_RESPONSE]


def json_param(value):
    return json.loads(value) if isinstance(value, str) else value


def verdicts_on_tracker(rasa: str, sender: str) -> list[feedback.Verdict]:
    response = httpx.get(f"{rasa}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=30)
    response.raise_for_status()
    return [v for v in map(feedback.verdict_of, response.json()["events"]) if v]


def post_slack_click(rasa: str, payload: dict, secret: str = SLACK_SECRET) -> httpx.Response:
    """An interactive payload as Slack posts it (form-encoded ``payload=<json>``), signed as Slack signs."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return httpx.post(f"{rasa}/webhooks/slack/webhook", content=body, timeout=30, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature})


def test_slack_shows_the_verdict_buttons_and_records_a_signed_click(channel_rasa, fake_slack, slow_llm, thanks):
    channel, user = "D0VERDICT", "U0VERDICT"
    assert post_slack_event(channel_rasa, slack_event(QUESTION, channel, now_ts(), user)).status_code == 200
    [reply] = fake_slack.wait_for("chat.postMessage", channel=channel)
    assert reply.params["text"] == LLM_REPLY
    blocks = json_param(reply.params["blocks"])
    buttons = [element for block in blocks if block["type"] == "actions" for element in block["elements"]]
    assert [b["text"]["text"] for b in buttons] == [feedback.BUTTON_TITLES["up"], feedback.BUTTON_TITLES["down"]]
    down = buttons[1]["value"]
    reply_id = json.loads(down[len("/feedback"):])["reply_id"]
    asked = len(slow_llm.behaviour.requests)

    click = {"type": "block_actions", "user": {"id": user}, "channel": {"id": channel},
             "message": {"ts": "1700000999.000100", "text": LLM_REPLY},
             "actions": [{"type": "button", "action_id": "a1", "value": down}]}
    forged = post_slack_click(channel_rasa, click, secret="not-the-secret")
    assert forged.status_code == 400 and "X-Slack-Signature" in forged.text
    assert post_slack_click(channel_rasa, click).status_code == 200
    calls = fake_slack.wait_for("chat.postMessage", count=2, channel=channel)
    assert calls[1].params["text"] in thanks
    assert verdicts_on_tracker(channel_rasa, user) == [feedback.Verdict("down", reply_id)]
    assert len(slow_llm.behaviour.requests) == asked, "a verdict must never be answered by the LLM"


def test_telegram_shows_an_inline_keyboard_and_records_its_callback(channel_rasa, fake_telegram, slow_llm, thanks):
    chat = 5101
    assert post_telegram(channel_rasa, update(6001, chat, QUESTION)).status_code == 200
    [reply] = fake_telegram.wait_for("sendMessage", chat_id=chat)
    assert reply.params["text"] == LLM_REPLY
    keyboard = json_param(reply.params["reply_markup"])["inline_keyboard"]
    buttons = [button for row in keyboard for button in row]
    assert [b["text"] for b in buttons] == [feedback.BUTTON_TITLES["up"], feedback.BUTTON_TITLES["down"]]
    up = buttons[0]["callback_data"]
    assert len(up.encode()) <= 64
    reply_id = json.loads(up[len("/feedback"):])["reply_id"]

    person = {"id": chat, "is_bot": False, "first_name": "Ann"}
    callback = {"update_id": 6002, "callback_query": {
        "id": "cb-6002", "from": person, "chat_instance": "ci-1", "data": up,
        "message": {"message_id": 77, "date": int(time.time()), "chat": {**person, "type": "private"},
                    "text": LLM_REPLY}}}
    assert post_telegram(channel_rasa, callback).status_code == 200
    fake_telegram.wait_for("answerCallbackQuery", callback_query_id="cb-6002")  # the button stops spinning
    calls = fake_telegram.wait_for("sendMessage", count=2, chat_id=chat)
    assert calls[1].params["text"] in thanks
    assert verdicts_on_tracker(channel_rasa, str(chat)) == [feedback.Verdict("up", reply_id)]
