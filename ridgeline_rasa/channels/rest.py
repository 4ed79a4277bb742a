"""The REST channel: ``ridgeline_rasa.channels.rest.RestInput`` in credentials.yml, at /webhooks/rest/webhook.

Rasa's REST channel answers a malformed body with a 500 (and a list instead of an object
crashes it); this one keeps its request and reply format and adds:
- a 400 that says what to change for a body that is not ``{"sender": "...", "message": "..."}``
  (also for an empty message, a sender the tracker store cannot key, JSON nested too deeply or
  holding a lone surrogate, and for ``?stream=true``, which it does not offer);
- (the API guard, ridgeline_rasa/api_guard.py, gives Rasa's own HTTP API clear 400s too; installed at start-up);
- the shared gate (channels/gate.py): text cleaned and cut to MAX_MESSAGE_CHARS, a 429 with
  Retry-After for a sender over the rate limit, and ``utter_no_reply`` instead of an empty
  list when Rasa produced no reply;
- the turn's request id (ridgeline.logs): taken from an ``X-Request-ID`` header when the client sends
  a usable one, else made by the gate; the reply carries it in ``X-Request-ID``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Awaitable, Callable, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from ridgeline.logs import REQUEST_ID_HEADER
from ridgeline.text import has_control_characters
from ridgeline_rasa import api_guard, install
from ridgeline_rasa.api_guard import BadBody, check_json
from ridgeline_rasa.channels.gate import MessageGate, shared_gate

MAX_SENDER_CHARS = api_guard.MAX_CONVERSATION_ID_CHARS
EXAMPLE = '{"sender": "visitor-42", "message": "where is my order?"}'


class BadRequest(ValueError):
    pass


def parse_body(raw: bytes) -> tuple[str, str, Optional[dict]]:
    """(sender, message, metadata) of a REST request body, or ``BadRequest`` saying what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    except RecursionError:
        raise BadRequest(f"the body is nested more than {api_guard.MAX_JSON_DEPTH} levels deep") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    try:
        check_json(body)
    except BadBody as error:
        raise BadRequest(str(error)) from None
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest('"sender" must be a non-empty string that identifies the conversation')
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f'"sender" is longer than {MAX_SENDER_CHARS} characters')
    if has_control_characters(sender):
        raise BadRequest('"sender" holds control characters')
    if not isinstance(message, str):
        raise BadRequest(f'"message" must be a string, got {type(message).__name__}')
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest('"metadata" must be a JSON object when given')
    return sender, message, metadata


class RestInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def __init__(self, gate: Optional[MessageGate] = None) -> None:
        self.gate = gate or shared_gate()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("ridgeline_rest", __name__)
        self.gate.attach(blueprint)
        install.on_server_start(blueprint)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if request.args.get("stream", "").lower() in {"true", "1"}:
                return _bad("stream=true is not offered here; the webchat's socket.io channel streams replies")
            try:
                sender, text, metadata = parse_body(request.body)
            except BadRequest as error:
                return _bad(str(error))
            text = self.gate.clean(text)
            if not text.strip():
                return _bad('"message" is empty: send some text')
            wait_s = self.gate.retry_after(sender)
            if wait_s is not None:
                return response.json(
                    {"error": f"Too many messages from this sender: wait {math.ceil(wait_s)} s and send again.",
                     "text": self.gate.text("utter_slow_down")},
                    status=429, headers={"Retry-After": str(math.ceil(wait_s))})
            collector = CollectingOutputChannel()
            request_id = await self.gate.process(on_new_message, UserMessage(
                text, collector, sender, input_channel=self.name(), metadata=metadata),
                request.headers.get(REQUEST_ID_HEADER))
            return response.json(collector.messages, headers={REQUEST_ID_HEADER: request_id})

        return blueprint


def _bad(problem: str) -> HTTPResponse:
    return response.json({"error": f"{problem}. Send a JSON object like {EXAMPLE}."}, status=400)
