"""Slack's Events API against a running Rasa: signatures, retries, threads, the posted reply."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from tests.ridgeline_rasa.fake_apis import SLACK_SECRET, SLACK_TOKEN
from tests.support.servers import domain_responses

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def slack_event(text: str, channel: str, ts: str, user: str) -> dict:
    """An ``event_callback`` as Slack sends it for a direct message to the app."""
    return {
        "token": "unused-verification-token", "team_id": "T0TEAM", "api_app_id": "A0APP",
        "type": "event_callback", "event_id": f"Ev{ts.replace('.', '')}", "event_time": int(float(ts)),
        "authorizations": [{"user_id": "U0BOT", "is_bot": True}],
        "event": {"type": "message", "channel": channel, "channel_type": "im", "user": user,
                  "text": text, "ts": ts, "event_ts": ts},
    }


def post(rasa: str, payload: dict, secret: str = SLACK_SECRET, timestamp: float | None = None,
         headers: dict | None = None, tamper: bool = False) -> httpx.Response:
    """POST to the events URL, signed as Slack signs: HMAC-SHA256 of ``v0:<timestamp>:<body>``."""
    body = json.dumps(payload).encode()
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    if tamper:
        body = body.replace(b'"text": "', b'"text": "forged ')
    return httpx.post(f"{rasa}/webhooks/slack/webhook", content=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
        **(headers or {})})


def now_ts() -> str:
    return f"{time.time():.6f}"


@pytest.fixture(scope="module")
def responses() -> dict[str, list[str]]:
    return domain_responses()


def test_a_signed_message_is_answered_in_its_thread(channel_rasa, fake_slack, responses):
    ts = now_ts()
    response = post(channel_rasa, slack_event("hi", "D0SIGNED", ts, "U0SIGNED"))
    assert response.status_code == 200

    [call] = fake_slack.wait_for("chat.postMessage", channel="D0SIGNED")
    assert call.params["text"] in responses["utter_greet"]
    assert call.params["thread_ts"] == ts, "SLACK_USE_THREADS=true: the reply belongs in the user's thread"
    assert "as_user" not in call.params, "new Slack apps refuse as_user"
    assert call.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"


def test_forged_and_stale_requests_are_refused(channel_rasa, fake_slack, responses):
    channel, user = "D0FORGED", "U0FORGED"
    wrong_secret = post(channel_rasa, slack_event("hi", channel, now_ts(), user), secret="not-the-secret")
    tampered = post(channel_rasa, slack_event("hi", channel, now_ts(), user), tamper=True)
    stale = post(channel_rasa, slack_event("hi", channel, now_ts(), user), timestamp=time.time() - 6 * 60)
    unsigned = httpx.post(f"{channel_rasa}/webhooks/slack/webhook", json=slack_event("hi", channel, now_ts(), user))
    for response in (wrong_secret, tampered, stale, unsigned):
        assert response.status_code == 400, response.text
        assert "X-Slack-Signature" in response.text

    # A correctly signed message afterwards is the only one answered on that channel.
    assert post(channel_rasa, slack_event("thanks", channel, now_ts(), user)).status_code == 200
    fake_slack.wait_for("chat.postMessage", channel=channel)
    time.sleep(1.0)  # time for a wrongly accepted message's reply to arrive too
    texts = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage", channel=channel)]
    assert len(texts) == 1 and texts[0] in responses["utter_youre_welcome"], texts


def test_a_retried_event_is_answered_once(channel_rasa, fake_slack, responses):
    channel, user = "D0RETRY", "U0RETRY"
    event = slack_event("hi", channel, now_ts(), user)
    assert post(channel_rasa, event).status_code == 200
    fake_slack.wait_for("chat.postMessage", channel=channel)
    # Slack delivers it again, e.g. after an HTTP error; Rasa's own connector would answer again.
    for attempt, reason in ((1, "http_error"), (2, "http_timeout")):
        retry = post(channel_rasa, event, headers={"X-Slack-Retry-Num": str(attempt),
                                                   "X-Slack-Retry-Reason": reason})
        assert retry.status_code == 200 and retry.headers.get("X-Slack-No-Retry") == "1"

    assert post(channel_rasa, slack_event("thanks", channel, now_ts(), user)).status_code == 200
    fake_slack.wait_for("chat.postMessage", count=2, channel=channel)
    time.sleep(1.0)
    texts = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage", channel=channel)]
    assert len(texts) == 2, texts
    assert texts[0] in responses["utter_greet"] and texts[1] in responses["utter_youre_welcome"]


def test_the_events_url_is_verified(channel_rasa):
    response = post(channel_rasa, {"token": "unused", "type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}
    forged = post(channel_rasa, {"type": "url_verification", "challenge": "x"}, secret="not-the-secret")
    assert forged.status_code == 400
