"""Slack (Events API): ``ridgeline_rasa.channels.slack.SlackInput`` in credentials.yml.

Rasa's own Slack connector, with what a real workspace needs on top:
- on only when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set (off, its webhook answers 404);
- every request's signature checked with the signing secret (Rasa's check: HMAC-SHA256 of
  ``v0:<timestamp>:<body>``, timestamps older than 5 minutes refused);
- a message Slack delivers again (a retry, or the same message as both ``message`` and
  ``app_mention`` event) is answered once;
- replies in the user's thread when SLACK_USE_THREADS is true;
- no ``as_user`` argument on chat.postMessage (apps created since 2021 are refused with it);
- the Events URL check (``url_verification``) answered as Slack documents it, ``{"challenge": ...}``;
- SLACK_API_URL points the Web API client elsewhere (the tests' fake Slack).

Webhook: POST /webhooks/slack/webhook. Settings (credentials.yml keys override them):
SLACK_BOT_TOKEN (slack_token), SLACK_SIGNING_SECRET (slack_signing_secret),
SLACK_CHANNEL (slack_channel), SLACK_USE_THREADS (use_threads),
SLACK_CONVERSATION_GRANULARITY (conversation_granularity: sender | channel | thread),
SLACK_API_URL (slack_api_url, default https://slack.com/api/).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot
from rasa.core.channels.slack import SlackInput as RasaSlackInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

from ridgeline_rasa import install
from ridgeline_rasa.channels.common import DisabledChannel, RecentKeys, environment, flag, setting
from ridgeline_rasa.channels.gate import shared_gate

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
GRANULARITIES = ("sender", "channel", "thread")


@dataclass(frozen=True)
class SlackSettings:
    token: Optional[str]
    signing_secret: Optional[str]
    channel: Optional[str] = None
    use_threads: bool = False
    granularity: str = "sender"
    api_url: str = DEFAULT_API_URL

    @classmethod
    def load(cls, credentials: Mapping[str, Any], env: Mapping[str, str]) -> "SlackSettings":
        granularity = setting(credentials, "conversation_granularity", env,
                              "SLACK_CONVERSATION_GRANULARITY", "sender")
        if granularity not in GRANULARITIES:
            raise ValueError(f"SLACK_CONVERSATION_GRANULARITY={granularity!r}: use one of {', '.join(GRANULARITIES)}.")
        api_url = setting(credentials, "slack_api_url", env, "SLACK_API_URL", DEFAULT_API_URL)
        return cls(
            token=setting(credentials, "slack_token", env, "SLACK_BOT_TOKEN"),
            signing_secret=setting(credentials, "slack_signing_secret", env, "SLACK_SIGNING_SECRET"),
            channel=setting(credentials, "slack_channel", env, "SLACK_CHANNEL"),
            use_threads=flag(setting(credentials, "use_threads", env, "SLACK_USE_THREADS", "false"),
                             "SLACK_USE_THREADS"),
            granularity=granularity,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
        )

    @property
    def missing(self) -> list[str]:
        names = {"SLACK_BOT_TOKEN": self.token, "SLACK_SIGNING_SECRET": self.signing_secret}
        return [name for name, value in names.items() if not value]


class SlackOutput(SlackBot):
    """Posts replies with chat.postMessage, in the user's thread when threads are on."""

    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_url: str = DEFAULT_API_URL) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url)

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        kwargs.pop("as_user", None)  # "invalid_arguments" for apps created since 2021; bots post as themselves
        if self.thread_id:
            kwargs["thread_ts"] = self.thread_id
        await self.client.chat_postMessage(channel=channel, **kwargs)


class SlackInput(RasaSlackInput):
    """Rasa's Slack input channel, on only with its secrets, answering each message once."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        settings = SlackSettings.load(credentials or {}, environment())
        if settings.missing:
            return DisabledChannel("slack", settings.missing)
        return cls(settings)

    def __init__(self, settings: SlackSettings) -> None:  # type: ignore[override]
        super().__init__(
            slack_token=settings.token,
            slack_channel=settings.channel,
            slack_retry_reason_header="x-slack-retry-reason",
            slack_retry_number_header="x-slack-retry-num",
            use_threads=settings.use_threads,
            slack_signing_secret=settings.signing_secret,
            conversation_granularity=settings.granularity,
        )
        self.api_url = settings.api_url
        self.delivered = RecentKeys()
        logger.info("Slack channel on (threads %s, conversations per %s, Web API %s)",
                    "on" if settings.use_threads else "off", settings.granularity, settings.api_url)

    def get_output_channel(self, channel: Optional[Text] = None,
                           thread_id: Optional[Text] = None) -> OutputChannel:
        return SlackOutput(self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        gate = shared_gate()
        blueprint = super().blueprint(gate.guard(on_new_message))
        gate.attach(blueprint)
        install.on_server_start(blueprint)

        @blueprint.middleware("request")
        async def url_verification(request: Request) -> Optional[HTTPResponse]:
            # Rasa answers with the bare challenge as a JSON string; Slack documents {"challenge": ...}.
            if request.method != "POST" or request.headers.get("content-type") != "application/json":
                return None
            try:
                body = request.json or {}
            except Exception:
                return None
            if body.get("type") == "url_verification" and self.is_request_from_slack_authentic(request):
                return response.json({"challenge": body.get("challenge")})
            return None

        return blueprint

    @staticmethod
    def delivery_key(request: Request) -> Optional[str]:
        """What identifies one user message across Slack's deliveries of it.

        A retry repeats the event (same ``event_id``); a mention in a channel the app also
        reads arrives twice, as ``message`` and as ``app_mention`` (same channel and ``ts``).
        """
        if request.headers.get("content-type") != "application/json":
            return None  # interactive payloads (buttons) are not retried by Slack
        body = request.json or {}
        event = body.get("event") or {}
        if event.get("channel") and event.get("ts"):
            return f"{event['channel']}:{event['ts']}"
        return body.get("event_id")

    async def process_message(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text], metadata: Optional[Dict]) -> Any:
        key = self.delivery_key(request)
        if key is not None and not self.delivered.add(key):
            logger.info("Slack delivered message %s again (retry %s, reason %s); it is answered once.", key,
                        request.headers.get(self.retry_num_header), request.headers.get(self.retry_reason_header))
            return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})

        metadata = metadata or {}
        thread_id = metadata.get("thread_id") if self.use_threads else None
        user_message = UserMessage(text, self.get_output_channel(metadata.get("out_channel"), thread_id),
                                   sender_id, input_channel=self.name(), metadata=metadata)
        # Slack wants an answer within 3 seconds: acknowledge now, handle the message in the background.
        task = asyncio.create_task(on_new_message(user_message))
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)
        task.add_done_callback(log_failure)
        return response.text("")


def log_failure(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("A Slack message could not be handled", exc_info=task.exception())
