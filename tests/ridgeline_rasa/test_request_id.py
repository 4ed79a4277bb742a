"""ridgeline_rasa/request_id.py and the gate's request id, in Rasa's own virtualenv against Rasa's RemoteAction.

A stand-in action server (a thread of this script) records the headers of each call Rasa's
``RemoteAction.run`` makes through ``EndpointConfig.request``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"

SCRIPT = r"""
import asyncio, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from ridgeline import logs
from ridgeline_rasa import request_id
from ridgeline_rasa.channels.gate import MessageGate
from ridgeline_rasa.channels.rest import RestInput
from ridgeline_rasa.settings import GateSettings

calls = []  # (sender of the action call, its X-Request-ID, its Authorization)

class ActionServer(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        calls.append((body["tracker"]["sender_id"], self.headers.get("X-Request-ID"), self.headers.get("Authorization")))
        reply = json.dumps({"events": [], "responses": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

server = ThreadingHTTPServer(("127.0.0.1", 0), ActionServer)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = EndpointConfig(f"http://127.0.0.1:{server.server_port}/webhook", headers={"Authorization": "Bearer t"})
domain = Domain.empty()

async def run_action(sender):
    action = RemoteAction("action_llm_response", endpoint)
    await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses),
                     DialogueStateTracker(sender, []), domain)
    return next(call for call in reversed(calls) if call[0] == sender)

async def turn(sender, rid):
    with logs.bound(request_id=rid, sender_id=sender):
        return await run_action(sender)

async def main():
    print("before install:", (await turn("s0", "turn-0"))[1])
    request_id.install()
    request_id.install()
    print("installed:", request_id.installed())
    print("in a turn:", (await turn("s1", "turn-1"))[1:])
    print("outside a turn:", (await run_action("s2"))[1])
    results = await asyncio.gather(*(turn(f"c{i}", f"turn-c{i}") for i in range(8)))
    print("concurrent turns keep their own:", all(rid == f"turn-{sender}" for sender, rid, _ in results))

    # the REST channel: the client's X-Request-ID, or one the gate makes, reaches the action call
    async def rasa(message):  # what Rasa's processor does for a turn that runs a custom action
        await run_action(message.sender_id)
        await message.output_channel.send_response(message.sender_id, {"text": "ok"})
    blueprint = RestInput(MessageGate(GateSettings())).blueprint(rasa)
    [route] = [r for r in blueprint._future_routes if r.uri == "/webhook"]
    async def post(sender, headers):
        request = SimpleNamespace(args={}, headers=headers,
                                  body=json.dumps({"sender": sender, "message": "hello"}).encode())
        response = await route.handler(request)
        return response.headers.get("X-Request-ID"), calls[-1][1]
    print("rest with a header:", await post("r1", {"X-Request-ID": "client-42"}))
    made, sent = await post("r2", {})
    print("rest without one:", made == sent and len(made) == 32)
    made, sent = await post("r3", {"X-Request-ID": "not a usable id"})
    print("rest with an unusable one:", made == sent and len(made) == 32)

    request_id.uninstall()
    request_id.uninstall()
    print("after uninstall:", request_id.installed(), (await turn("s3", "turn-3"))[1])

asyncio.run(main())
server.shutdown()
"""


def test_rasas_action_calls_carry_the_turns_request_id():
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    result = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "before install: None" in lines  # Rasa's own call, for contrast
    assert "installed: True" in lines
    assert "in a turn: ('turn-1', 'Bearer t')" in lines  # the endpoint's own headers stay
    assert "outside a turn: None" in lines
    assert "concurrent turns keep their own: True" in lines
    assert "rest with a header: ('client-42', 'client-42')" in lines
    assert "rest without one: True" in lines
    assert "rest with an unusable one: True" in lines
    assert "after uninstall: False None" in lines
