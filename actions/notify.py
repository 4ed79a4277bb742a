"""Tell the team about a new ticket: a Slack message (``chat.postMessage``) and/or an email (SMTP).

Whichever of the two ``HANDOFF_*`` settings configure (actions/config.py) is used; with neither, the
ticket waits in the store database for ``python -m review tickets``. Notifications start after the
ticket is committed and run in the background (``schedule``), each within
``HANDOFF_NOTIFY_TIMEOUT_S``: the visitor's turn never waits for Slack or the mail relay, and a
failure loses nothing. It is logged and counted (``action_handoff_notifications_total``).

What goes where: the Slack message (a third party's workspace) has the visitor's message masked
(``ridgeline.privacy``) and says only whether they left an email; the email, to the team's own
mailbox, carries that address as ``Reply-To`` so that answering it reaches the visitor.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import httpx

from actions import metrics
from actions.config import ActionServerConfig
from ridgeline.privacy import mask_personal_data

logger = logging.getLogger(__name__)

# The background sends still running; kept so that they are not garbage-collected mid-way.
_pending: set[asyncio.Task] = set()


@dataclass(frozen=True)
class TicketNotice:
    number: str
    channel: str
    reason: str
    contact: str | None
    created: str  # e.g. "2026-05-01 14:03 UTC"


class NotifyError(Exception):
    """The server refused the message or answered an error."""


def summary(notice: TicketNotice) -> str:
    """The lines both channels send, personal data masked."""
    reply = "they left an email address for the answer" if notice.contact else "they left no contact: answer " \
        "in the conversation if they are still there"
    return "\n".join([
        f"New ticket {notice.number} ({notice.channel}, {notice.created}): a visitor asked for a person; {reply}.",
        f"They wrote: {mask_personal_data(notice.reason) or '(nothing)'}",
        f"See it with: python -m review tickets   close it with: python -m review close {notice.number}",
    ])


async def send_slack(config: ActionServerConfig, notice: TicketNotice) -> None:
    url = config.handoff_slack_api_url.rstrip("/") + "/chat.postMessage"
    async with httpx.AsyncClient(timeout=config.handoff_notify_timeout_s) as client:
        response = await client.post(url, json={"channel": config.handoff_slack_channel, "text": summary(notice)},
                                     headers={"Authorization": f"Bearer {config.handoff_slack_bot_token}"})
    if response.status_code != 200:
        raise NotifyError(f"Slack answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise NotifyError("Slack answered with no JSON") from None
    if not body.get("ok"):
        raise NotifyError(f"Slack refused the message: {body.get('error', 'no reason given')}")


def email_message(config: ActionServerConfig, notice: TicketNotice) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"Ticket {notice.number}: a visitor asked for a person"
    message["From"] = config.handoff_smtp_from
    message["To"] = ", ".join(config.handoff_smtp_to)
    if notice.contact:
        message["Reply-To"] = notice.contact
    message.set_content(summary(notice) + ("\n\nReply to this email to answer the visitor." if notice.contact else ""))
    return message


def _send_email_blocking(config: ActionServerConfig, message: EmailMessage) -> None:
    timeout = config.handoff_notify_timeout_s
    with smtplib.SMTP(config.handoff_smtp_host, config.handoff_smtp_port, timeout=timeout) as smtp:
        if config.handoff_smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.handoff_smtp_user:
            smtp.login(config.handoff_smtp_user, config.handoff_smtp_password or "")
        smtp.send_message(message)


async def send_email(config: ActionServerConfig, notice: TicketNotice) -> None:
    await asyncio.to_thread(_send_email_blocking, config, email_message(config, notice))


SENDERS = {"slack": send_slack, "email": send_email}


def channels(config: ActionServerConfig) -> list[str]:
    """The notification channels configured, in order."""
    return [name for name, on in (("slack", config.handoff_slack_configured),
                                  ("email", config.handoff_smtp_configured)) if on]


async def _one(config: ActionServerConfig, channel: str, notice: TicketNotice) -> str:
    try:
        await asyncio.wait_for(SENDERS[channel](config, notice), timeout=config.handoff_notify_timeout_s)
        outcome = "ok"
    except (asyncio.TimeoutError, httpx.TimeoutException, TimeoutError):
        logger.warning("ticket %s: the %s notification timed out after %g s; the ticket is kept",
                       notice.number, channel, config.handoff_notify_timeout_s)
        outcome = "timeout"
    except Exception as error:  # noqa: BLE001 - any failure: logged, counted, the ticket stays
        logger.warning("ticket %s: the %s notification failed (%s: %s); the ticket is kept",
                       notice.number, channel, type(error).__name__, error)
        outcome = "error"
    metrics.count_handoff_notification(channel, outcome)
    return outcome


async def notify(config: ActionServerConfig, notice: TicketNotice) -> dict[str, str]:
    """Send ``notice`` on every configured channel at once; channel -> ``ok``, ``error`` or ``timeout``."""
    names = channels(config)
    outcomes = await asyncio.gather(*(_one(config, name, notice) for name in names))
    return dict(zip(names, outcomes))


def schedule(config: ActionServerConfig, notice: TicketNotice) -> asyncio.Task | None:
    """``notify`` in the background of the running loop; ``None`` when nothing is configured."""
    if not channels(config):
        logger.info("ticket %s: no HANDOFF_SLACK_* or HANDOFF_SMTP_* set; it waits for `python -m review tickets`",
                    notice.number)
        return None
    task = asyncio.get_running_loop().create_task(notify(config, notice), name=f"notify-{notice.number}")
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


def pending() -> int:
    """How many notifications are still running in the background."""
    return len(_pending)


async def wait_pending() -> None:
    """Wait for the background notifications still running (tests; a clean shutdown)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
