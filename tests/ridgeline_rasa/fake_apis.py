"""Fake Slack Web API and Telegram Bot API servers on loopback that record what Rasa posts.

Rasa's channels (ridgeline_rasa.channels) are pointed at them with SLACK_API_URL and TELEGRAM_API_URL, so a test
sees exactly the HTTP calls that would have gone to slack.com or api.telegram.org.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.support.servers import wait_until

SLACK_TOKEN = "xoxb-000000000-test-token"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TELEGRAM_TOKEN = "123456789:AAF-test-token-for-the-fake-api_x"
TELEGRAM_SECRET = "webhook-secret_0123456789"
TELEGRAM_WEBHOOK_URL = "https://assistant.example.com/webhooks/telegram/webhook"


@dataclass
class Call:
    path: str
    method: str  # the API method: chat.postMessage, sendMessage, ...
    params: dict
    headers: dict = field(default_factory=dict)


def parse_body(content_type: str, body: bytes) -> dict:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        return {part.get_param("name", header="content-disposition"): part.get_content()
                for part in message.iter_parts()}
    return dict(parse_qsl(body.decode()))


class FakeApi:
    """A threaded HTTP server; subclasses say how each call is answered."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._handle()

            def do_GET(self) -> None:  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                params = parse_body(self.headers.get("Content-Type", ""), body)
                params.update(parse_qsl(urlsplit(self.path).query))
                call = Call(path=path, method=path.rsplit("/", 1)[-1], params=params, headers=dict(self.headers))
                with api._lock:
                    api.calls.append(call)
                status, answer = api.answer(call)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, call: Call) -> tuple[int, dict]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls_to(self, method: str, **params) -> list[Call]:
        with self._lock:
            return [c for c in self.calls
                    if c.method == method and all(str(c.params.get(k)) == str(v) for k, v in params.items())]

    def wait_for(self, method: str, count: int = 1, timeout_s: float = 30.0, **params) -> list[Call]:
        return wait_until(lambda: len(self.calls_to(method, **params)) >= count and self.calls_to(method, **params),
                          timeout_s=timeout_s, what=f"{count} {method} call(s) with {params}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeSlack(FakeApi):
    """Slack's Web API (https://slack.com/api/<method>): chat.postMessage and friends answer ok."""

    def answer(self, call: Call) -> tuple[int, dict]:
        if call.method == "chat.postMessage":
            return 200, {"ok": True, "channel": call.params.get("channel"), "ts": "1700000999.000100",
                         "message": {"text": call.params.get("text"), "type": "message"}}
        return 200, {"ok": True}


class FakeTelegram(FakeApi):
    """Telegram's Bot API (https://api.telegram.org/bot<token>/<method>)."""

    username = "sherpa_test_bot"

    def answer(self, call: Call) -> tuple[int, dict]:
        if call.method == "getMe":
            return 200, {"ok": True, "result": {"id": 42, "is_bot": True, "first_name": "Sherpa",
                                                "username": self.username}}
        if call.method == "sendMessage":
            return 200, {"ok": True, "result": {
                "message_id": len(self.calls), "date": 1700000000, "text": call.params.get("text"),
                "chat": {"id": int(call.params.get("chat_id", 0)), "type": "private"}}}
        return 200, {"ok": True, "result": True}
