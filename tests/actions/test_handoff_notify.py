"""The team hears of a ticket (actions/notify.py): a fake Slack Web API on loopback that records each
chat.postMessage (its bearer token and channel checked), and a real SMTP server on loopback (aiosmtpd).
And the failures (Slack's 500, a refusal, a timeout; SMTP refused or without STARTTLS): logged and
counted, while the ticket stays in the store database and the visitor gets their answer at once."""

from __future__ import annotations

import asyncio
import time
from email import message_from_bytes
from email.message import Message

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from rasa_sdk.executor import CollectingDispatcher

from actions import handoff, metrics, notify, orders_db
from actions.config import ActionServerConfig
from tests.actions.test_handoff import ASKED, tracker, user
from tests.ridgeline_rasa.fake_apis import Call, FakeSlack
from tools.procs import free_port

BOT_TOKEN = "xoxb-111-222-handoff-test"
CHANNEL = "C0HANDOFF01"
NOTICE = notify.TicketNotice(number="T-123456", channel="socketio", contact="anna@example.com",
                             reason="I want a person, my order RG-10421 is late (anna@example.com)",
                             created="2026-05-01 14:03 UTC")


class TeamSlack(FakeSlack):
    """Slack's Web API as the handoff sees it: the bot token checked; ``status``, ``delay_s`` and ``error``
    make it fail as the real one can."""

    def __init__(self) -> None:
        super().__init__()
        self.status, self.delay_s, self.error = 200, 0.0, None
        # a client that gave up (the timeout cases) makes the late answer a broken pipe: expected, not printed
        self._server.handle_error = lambda request, client_address: None

    def answer(self, call: Call) -> tuple[int, dict]:
        time.sleep(self.delay_s)
        if call.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return 200, {"ok": False, "error": "invalid_auth"}
        if self.status != 200:
            return self.status, {"ok": False, "error": "internal_error"}
        if self.error:
            return 200, {"ok": False, "error": self.error}
        return super().answer(call)


class Inbox:
    """aiosmtpd's handler: every message the server accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's naming
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def team_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"sherpa", b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture
def slack():
    with TeamSlack() as server:
        yield server


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=team_login,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def settings(tmp_path, slack: TeamSlack | None = None, smtp_port: int | None = None, **overrides) -> ActionServerConfig:
    values = {"orders_db_url": f"sqlite:///{tmp_path / 'store.db'}", "orders_seed_sample": False,
              "handoff_notify_timeout_s": 2.0}
    if slack:
        values |= {"handoff_slack_bot_token": BOT_TOKEN, "handoff_slack_channel": CHANNEL,
                   "handoff_slack_api_url": f"{slack.url}/api"}
    if smtp_port:
        values |= {"handoff_smtp_host": "127.0.0.1", "handoff_smtp_port": smtp_port,
                   "handoff_smtp_from": "sherpa@ridgeline.example", "handoff_smtp_to": ("team@ridgeline.example",),
                   "handoff_smtp_starttls": False}
    return ActionServerConfig(**(values | overrides))


def count(channel: str, outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value("action_handoff_notifications_total",
                                             {"channel": channel, "outcome": outcome}) or 0.0


# ---------------------------------------------------------------- each channel


def test_slack_gets_one_chat_post_message_with_the_bot_token_in_the_channel(tmp_path, slack):
    before = count("slack", "ok")
    assert asyncio.run(notify.notify(settings(tmp_path, slack), NOTICE)) == {"slack": "ok"}
    [call] = slack.calls_to("chat.postMessage")
    assert call.path == "/api/chat.postMessage"
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.params["channel"] == CHANNEL
    text = call.params["text"]
    assert "New ticket T-123456 (socketio, 2026-05-01 14:03 UTC)" in text and "python -m review close T-123456" in text
    assert "they left an email address" in text
    # a third party's workspace: the visitor's address and order id do not go there
    assert "anna@example.com" not in text and "RG-10421" not in text and "<email>" in text
    assert count("slack", "ok") - before == 1


def test_an_email_reaches_the_teams_mailbox_with_the_visitor_as_reply_to(tmp_path, smtp):
    controller, inbox = smtp
    config = settings(tmp_path, smtp_port=controller.port, handoff_smtp_user="sherpa", handoff_smtp_password="s3cret")
    before = count("email", "ok")
    assert asyncio.run(notify.notify(config, NOTICE)) == {"email": "ok"}
    [(sender, recipients, message)] = inbox.messages
    assert (sender, recipients) == ("sherpa@ridgeline.example", ["team@ridgeline.example"])
    assert message["Subject"] == "Ticket T-123456: a visitor asked for a person"
    assert message["Reply-To"] == "anna@example.com"
    body = message.get_payload(decode=True).decode()
    assert "New ticket T-123456" in body and "Reply to this email to answer the visitor." in body
    assert count("email", "ok") - before == 1


def test_both_channels_when_both_are_configured_and_none_without_settings(tmp_path, slack, smtp):
    controller, inbox = smtp
    assert asyncio.run(notify.notify(settings(tmp_path, slack, controller.port), NOTICE)) == {
        "slack": "ok", "email": "ok"}
    assert len(slack.calls_to("chat.postMessage")) == 1 and len(inbox.messages) == 1
    assert asyncio.run(notify.notify(settings(tmp_path), NOTICE)) == {}


# ---------------------------------------------------------------- failures: counted, never raised


def test_slack_failures_are_counted_by_outcome(tmp_path, slack):
    config = settings(tmp_path, slack, handoff_notify_timeout_s=1.0)
    slack.status = 500
    before = {outcome: count("slack", outcome) for outcome in ("error", "timeout")}
    assert asyncio.run(notify.notify(config, NOTICE)) == {"slack": "error"}
    slack.status, slack.error = 200, "channel_not_found"
    assert asyncio.run(notify.notify(config, NOTICE)) == {"slack": "error"}
    slack.error, slack.delay_s = None, 3.0  # it would answer ok after 3 s: "timeout" says the 1 s budget ended it
    assert asyncio.run(notify.notify(config, NOTICE)) == {"slack": "timeout"}
    assert count("slack", "error") - before["error"] == 2 and count("slack", "timeout") - before["timeout"] == 1


def test_a_wrong_bot_token_is_a_failure(tmp_path, slack):
    config = settings(tmp_path, slack, handoff_slack_bot_token="xoxb-wrong")
    assert asyncio.run(notify.notify(config, NOTICE)) == {"slack": "error"}


def test_smtp_refused_or_without_starttls_is_a_failure(tmp_path, smtp, caplog):
    controller, inbox = smtp
    before = count("email", "error")
    assert asyncio.run(notify.notify(settings(tmp_path, smtp_port=free_port()), NOTICE)) == {"email": "error"}
    config = settings(tmp_path, smtp_port=controller.port, handoff_smtp_starttls=True)  # the server has no TLS
    assert asyncio.run(notify.notify(config, NOTICE)) == {"email": "error"}
    bad_login = settings(tmp_path, smtp_port=controller.port, handoff_smtp_user="sherpa", handoff_smtp_password="no")
    assert asyncio.run(notify.notify(bad_login, NOTICE)) == {"email": "error"}
    assert inbox.messages == [] and count("email", "error") - before == 3
    assert "ticket T-123456: the email notification failed" in caplog.text and "the ticket is kept" in caplog.text


# ---------------------------------------------------------------- through action_open_ticket


def open_ticket(config: ActionServerConfig) -> tuple[list[str], int, int]:
    """The action's turn (its messages, and how many notifications were still running when it returned),
    then the background notifications."""
    orders_db.cached_engine(config.orders_db_url, config.orders_seed_sample)

    async def turn():
        dispatcher = CollectingDispatcher()
        await handoff.ActionOpenTicket(config).run(
            dispatcher, tracker(ASKED + [user("anna@example.com", "check_order_status")],
                                {"handoff_contact": "anna@example.com"}), {})
        running = notify.pending()
        await notify.wait_pending()
        return [m["text"] for m in dispatcher.messages], running

    said, running = asyncio.run(turn())
    engine = sa.create_engine(config.orders_db_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one()
    return said, running, rows


def test_the_ticket_is_announced_after_it_is_committed(tmp_path, slack, smtp):
    controller, inbox = smtp
    said, _, rows = open_ticket(settings(tmp_path, slack, controller.port))
    [call] = slack.calls_to("chat.postMessage")
    number = said[0].split("ticket ")[1].split(" ")[0]
    assert rows == 1 and f"New ticket {number}" in call.params["text"]
    assert inbox.messages[0][2]["Subject"].startswith(f"Ticket {number}:")


@pytest.mark.parametrize("failure", ["slack-500", "slack-timeout", "smtp-refused"])
def test_a_failed_notification_keeps_the_ticket_and_answers_the_visitor_at_once(tmp_path, slack, failure):
    if failure == "slack-500":
        slack.status = 500
        config = settings(tmp_path, slack)
    elif failure == "slack-timeout":
        slack.delay_s = 3.0  # beyond the 2 s budget
        config = settings(tmp_path, slack)
    else:
        config = settings(tmp_path, smtp_port=free_port())
    said, running, rows = open_ticket(config)
    assert rows == 1
    assert said[0].startswith("I've opened ticket T-") and "A person from our team will answer within our support " \
                                                            "hours: Monday to Friday" in said[0]
    # the visitor's turn was answered while the notification was still on its way (up to its 2 s budget)
    assert running == 1, "the visitor's turn waited for the notification"
