"""The webchat widget's socket.io channel: ``ridgeline_rasa.channels.socketio.SocketIOInput`` in credentials.yml.

Rasa's own socketio channel with two fixes the website needs:
- with ``session_persistence`` Rasa 3.6 calls ``AsyncServer.enter_room`` without awaiting it;
  since python-socketio 5.10 that is a coroutine, so the browser never joins its session's
  room and never receives a reply (RasaHQ/rasa#13027). Here it is awaited when it must be.
- the rasa-webchat widget sends its ``initPayload`` (null unless set) when a new visitor
  opens the page; an empty message would otherwise reach the NLU as a turn of its own
  (nlu_fallback, then the LLM). Empty and malformed messages are dropped.
- the shared gate (channels/gate.py): rate limit per session, text cleaned and cut, and
  ``utter_no_reply`` when Rasa produced no reply.

Settings are Rasa's: user_message_evt, bot_message_evt, session_persistence, socketio_path.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from ridgeline_rasa import install
from ridgeline_rasa.channels.gate import shared_gate

logger = logging.getLogger(__name__)


class SocketIOInput(RasaSocketIOInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        gate = shared_gate()
        blueprint = super().blueprint(gate.guard(on_new_message))
        gate.attach(blueprint)
        install.on_server_start(blueprint)
        sio = self.sio
        namespace = self.namespace or "/"
        handle_message = sio.handlers[namespace][self.user_message_evt]

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            data = data or {}
            session_id = data.get("session_id") or uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id)
                if inspect.isawaitable(entered):  # python-socketio >= 5.10
                    await entered
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def user_message(sid: Text, data: Dict) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message"), str) \
                    or not gate.clean(data["message"]).strip():
                logger.debug("Dropped an empty or malformed socket.io message from %s", sid)
                return
            session_id = data.get("session_id")
            if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 255
                                           or gate.clean(session_id) != session_id):
                logger.info("Dropped a socket.io message from %s with a malformed session_id", sid)
                return
            data = {**data, self.metadata_key: _metadata(data.get(self.metadata_key))}
            await handle_message(sid, data)

        return blueprint


def _metadata(value: Any) -> Dict:
    """The message's metadata as an object: Rasa would json.loads a string and fail on anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
