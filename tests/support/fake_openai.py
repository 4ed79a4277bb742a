"""A real HTTP server on loopback that plays an OpenAI-compatible LLM service badly or well.

Used to test the action server's client against real sockets: slow replies,
HTTP errors, malformed JSON and dropped connections.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    # ok: streams when asked to (``"stream": true``), else one JSON body; json: one JSON body even
    # when asked to stream; stream_error: a few words, then an error event; and the failures.
    mode: str = "ok"  # ok | json | stream_error | slow | status | garbage | empty | drop
    reply: str = "Pitch the tent with its back to the wind."
    delay_s: float = 0.0
    word_delay_s: float = 0.0  # between streamed words
    stall_after_words: int | None = None  # then wait stall_s before the next word
    stall_s: float = 30.0
    finish_reason: str = "stop"  # of a stream: "length" plays a reply that max_tokens stopped
    status: int = 500
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    streams_finished: int = 0
    streams_abandoned: int = 0


class FakeOpenAIServer:
    def __init__(self, port: int = 0, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        behaviour_of = lambda: self.behaviour  # noqa: E731 - the handler reads the current one

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - a health check for runs as a process
                self._send(200, b'{"status": "ok"}')

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                behaviour = behaviour_of()
                length = int(self.headers.get("Content-Length", 0))
                behaviour.requests.append(json.loads(self.rfile.read(length)))
                behaviour.headers.append(dict(self.headers))
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                if behaviour.mode == "drop":
                    self.connection.close()
                    return
                if behaviour.mode == "status":
                    self._send(behaviour.status, b'{"error": {"message": "boom"}}')
                elif behaviour.mode == "garbage":
                    self._send(200, b"<html>not json</html>")
                elif behaviour.mode == "empty":
                    self._send(200, json.dumps({"choices": [{"message": {"content": "  "}}]}).encode())
                elif behaviour.requests[-1].get("stream") and behaviour.mode != "json":
                    self._stream(behaviour)
                else:
                    body = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": behaviour.reply},
                                     "finish_reason": "stop"}],
                    }
                    self._send(200, json.dumps(body).encode())

            def _stream(self, behaviour: Behaviour) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = behaviour.reply.split(" ")
                if behaviour.mode == "stream_error":
                    words = words[: len(words) // 2]
                try:
                    self._event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
                    for i, word in enumerate(words):
                        time.sleep(behaviour.stall_s if i == behaviour.stall_after_words else behaviour.word_delay_s)
                        self._event({"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word}}]})
                    if behaviour.mode == "stream_error":
                        self._event({"error": {"message": "the engine failed", "type": "server_error"}})
                    else:
                        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": behaviour.finish_reason}]})
                    behaviour.streams_finished += 1  # before [DONE], so the client sees it counted
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    behaviour.streams_abandoned += 1  # the client left mid-stream

            def _event(self, payload: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Run as a process (``python -m tests.support.fake_openai --port 8001 --delay 30``), so a
    test can kill it in the middle of a request and start it again."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_openai")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply", default=Behaviour.reply)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.port, Behaviour(mode=args.mode, delay_s=args.delay, reply=args.reply))
    server._server.serve_forever()


if __name__ == "__main__":
    main()
