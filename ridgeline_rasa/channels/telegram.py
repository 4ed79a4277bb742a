"""Telegram (Bot API webhook): ``ridgeline_rasa.channels.telegram.TelegramInput`` in credentials.yml.

Rasa's own Telegram connector checks nothing about who calls its webhook (it only asks
Telegram, on every update, whether its bot's name is the configured one). This one:
- is on only when TELEGRAM_ACCESS_TOKEN and TELEGRAM_SECRET_TOKEN are set (off, its webhook
  answers 404);
- registers the webhook with that secret (setWebhook ``secret_token``) when the Rasa server
  starts, if TELEGRAM_WEBHOOK_URL is set, and refuses (403) every update whose
  ``X-Telegram-Bot-Api-Secret-Token`` header does not carry it;
- answers an update that Telegram delivers again (same ``update_id``) once;
- turns Telegram's ``/start`` (sent when someone opens the bot) into a greeting;
- answers each button tap (``callback_query``) with ``answerCallbackQuery``, so the button stops spinning;
- TELEGRAM_API_URL points the Bot API client elsewhere (the tests' fake Telegram).

Webhook: POST /webhooks/telegram/webhook. Settings (credentials.yml keys override them):
TELEGRAM_ACCESS_TOKEN (access_token), TELEGRAM_SECRET_TOKEN (secret_token),
TELEGRAM_WEBHOOK_URL (webhook_url), TELEGRAM_API_URL (api_url, default https://api.telegram.org).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Text

from aiogram import Bot
from aiogram.bot.api import TelegramAPIServer
from aiogram.types import Update
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput as RasaTelegramInput
from rasa.core.channels.telegram import TelegramOutput as RasaTelegramOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from ridgeline.access import same_secret
from ridgeline_rasa import install
from ridgeline_rasa.channels.common import DisabledChannel, RecentKeys, environment, setting
from ridgeline_rasa.channels.gate import shared_gate

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token
START_COMMAND = "/start"
START_INTENT = "/greet"


@dataclass(frozen=True)
class TelegramSettings:
    token: Optional[str]
    secret_token: Optional[str]
    webhook_url: Optional[str] = None
    api_url: str = DEFAULT_API_URL

    @classmethod
    def load(cls, credentials: Mapping[str, Any], env: Mapping[str, str]) -> "TelegramSettings":
        secret = setting(credentials, "secret_token", env, "TELEGRAM_SECRET_TOKEN")
        if secret and not SECRET_PATTERN.fullmatch(secret):
            raise ValueError("TELEGRAM_SECRET_TOKEN may hold only A-Z, a-z, 0-9, _ and - (1-256 characters), "
                             "as Telegram requires; e.g. `openssl rand -hex 32`.")
        return cls(
            token=setting(credentials, "access_token", env, "TELEGRAM_ACCESS_TOKEN"),
            secret_token=secret,
            webhook_url=setting(credentials, "webhook_url", env, "TELEGRAM_WEBHOOK_URL"),
            api_url=setting(credentials, "api_url", env, "TELEGRAM_API_URL", DEFAULT_API_URL).rstrip("/"),
        )

    @property
    def missing(self) -> list[str]:
        names = {"TELEGRAM_ACCESS_TOKEN": self.token, "TELEGRAM_SECRET_TOKEN": self.secret_token}
        return [name for name, value in names.items() if not value]


class TelegramOutput(RasaTelegramOutput):
    """Rasa's Telegram output channel on a configurable Bot API server."""

    def __init__(self, access_token: Text, api_url: str = DEFAULT_API_URL) -> None:
        Bot.__init__(self, access_token, server=TelegramAPIServer.from_base(api_url))


class TelegramInput(RasaTelegramInput):
    """Telegram updates that carry the webhook's secret token, each answered once."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        settings = TelegramSettings.load(credentials or {}, environment())
        if settings.missing:
            return DisabledChannel("telegram", settings.missing)
        return cls(settings)

    def __init__(self, settings: TelegramSettings) -> None:  # type: ignore[override]
        super().__init__(settings.token, verify=None, webhook_url=settings.webhook_url, debug_mode=False)
        self.secret_token = settings.secret_token or ""
        self.api_url = settings.api_url
        self.delivered = RecentKeys()
        logger.info("Telegram channel on (Bot API %s, webhook %s)", settings.api_url,
                    settings.webhook_url or "registered elsewhere")

    def get_output_channel(self) -> TelegramOutput:
        # Unlike Rasa's, this does not call setWebhook here: that happens once the server runs.
        return TelegramOutput(self.access_token, self.api_url)

    def is_from_telegram(self, request: Request) -> bool:
        return same_secret(request.headers.get(SECRET_HEADER, ""), self.secret_token)

    async def register_webhook(self, bot: TelegramOutput) -> None:
        if not self.webhook_url:
            return
        try:
            await bot.request("setWebhook", {"url": self.webhook_url, "secret_token": self.secret_token})
            logger.info("Telegram webhook set to %s", self.webhook_url)
        except Exception as error:  # the server still serves the other channels; say what to fix
            logger.error("Telegram setWebhook(%s) failed: %s. Check TELEGRAM_ACCESS_TOKEN and that the URL "
                         "is public HTTPS; Telegram sends nothing until it succeeds.", self.webhook_url, error)

    @staticmethod
    async def acknowledge(bot: TelegramOutput, callback_query_id: str) -> None:
        """``answerCallbackQuery``: without it the tapped button (a verdict on a reply) keeps spinning."""
        try:
            await bot.answer_callback_query(callback_query_id)
        except Exception as error:  # the tap is still handled; only the spinner stays
            logger.warning("Telegram answerCallbackQuery failed: %s", error)

    @staticmethod
    def user_text(update: Update) -> tuple[Optional[Any], Optional[str]]:
        """The message an update is about and the text to hand to Rasa (None: nothing to answer)."""
        if update.callback_query is not None:
            return update.callback_query.message, update.callback_query.data
        message = update.edited_message or update.message
        if message is None:
            return None, None
        if message.text is not None:
            text = message.text.replace("/bot", "")
            return message, START_INTENT if text.strip() == START_COMMAND else text
        if message.location is not None:
            return message, '{{"lng":{0}, "lat":{1}}}'.format(message.location.longitude,
                                                            message.location.latitude)
        return message, None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        telegram_webhook = Blueprint("telegram_webhook", __name__)
        out_channel = self.get_output_channel()
        gate = shared_gate()
        gate.attach(telegram_webhook)
        install.on_server_start(telegram_webhook)
        on_new_message = gate.guard(on_new_message)

        @telegram_webhook.listener("after_server_start")
        async def set_webhook(app: Any, loop: Any) -> None:
            await self.register_webhook(out_channel)

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            if not self.is_from_telegram(request):
                logger.warning("Refused a Telegram webhook call without the right %s header", SECRET_HEADER)
                return response.json({"error": f"missing or wrong {SECRET_HEADER}"}, status=HTTPStatus.FORBIDDEN)
            try:
                update = Update(**(request.json or {}))
            except Exception:
                return response.json({"error": "the body is not a Telegram update"}, status=HTTPStatus.BAD_REQUEST)
            if update.update_id is not None and not self.delivered.add(str(update.update_id)):
                logger.info("Telegram delivered update %s again; it is answered once.", update.update_id)
                return response.text("duplicate")
            msg, text = self.user_text(update)
            if update.callback_query is not None:
                await self.acknowledge(out_channel, update.callback_query.id)
            if msg is None or text is None:
                return response.text("success")
            try:
                await on_new_message(UserMessage(text, out_channel, msg.chat.id, input_channel=self.name(),
                                                 metadata=self.get_metadata(request)))
            except Exception:  # answering 200 anyway: Telegram would redeliver and fail again
                logger.exception("A Telegram update could not be handled")
            return response.text("success")

        return telegram_webhook
