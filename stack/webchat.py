"""Serve the webchat page (web/) and tell it where Rasa listens: ``python -m stack.webchat``.

The page embeds the rasa-webchat widget, which `make setup` installs with npm into
web/node_modules (web/package-lock.json pins it); this server hands out its bundle as
/vendor/rasa-webchat.js, so the browser loads nothing from a CDN. Only the page's own
files and that bundle are served, never the rest of node_modules.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

logger = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
WIDGET_PATH = "/vendor/rasa-webchat.js"
WIDGET_FILE = WEB_ROOT / "node_modules" / "rasa-webchat" / "lib" / "index.js"
HIDDEN = {"node_modules", "package.json", "package-lock.json"}  # never served as files
# The widget's CSS imports its font from Google Fonts; the page uses the system font instead,
# so the browser contacts no third party (and works offline).
REMOTE_FONT_IMPORT = re.compile(rb"@import url\(https://fonts\.googleapis\.com/[^)]*\);?")


def widget_bundle() -> bytes | None:
    """rasa-webchat's bundle as the page gets it (without the remote font import), or None if not installed."""
    if not WIDGET_FILE.is_file():
        return None
    return REMOTE_FONT_IMPORT.sub(b"", WIDGET_FILE.read_bytes())


class WebchatHandler(SimpleHTTPRequestHandler):
    rasa_url = "http://localhost:5005"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/config.js":
            self._send(200, f"window.RASA_URL = {json.dumps(self.rasa_url)};\n".encode(),
                       "application/javascript", cache="no-store")
        elif path == WIDGET_PATH:
            bundle = widget_bundle()
            if bundle is not None:
                self._send(200, bundle, "application/javascript", cache="max-age=3600")
            else:
                self._send(404, b"// rasa-webchat is not installed: run `make setup` (npm ci in web/).\n",
                           "application/javascript")
        else:
            super().do_GET()

    def translate_path(self, path: str) -> str:
        full = super().translate_path(path)  # decoded and normalised: "..", "%2e" and "//" are gone
        parts = Path(full).relative_to(self.directory).parts if full.startswith(self.directory) else ()
        if parts and parts[0] in HIDDEN:
            return str(Path(self.directory) / "__hidden__")  # does not exist: 404
        return full

    def _send(self, status: int, body: bytes, content_type: str, cache: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if cache:
            self.send_header("Cache-Control", cache)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.webchat", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default="http://localhost:5005", help="Rasa as the browser reaches it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = type("Handler", (WebchatHandler,), {"rasa_url": args.rasa_url})
    server = ThreadingHTTPServer((args.host, args.port), functools.partial(handler, directory=str(WEB_ROOT)))
    logger.info("webchat on http://%s:%d (Rasa at %s)", args.host, args.port, args.rasa_url)
    if not WIDGET_FILE.is_file():
        logger.error("The chat widget is missing (%s): run `make setup`, which installs it with npm.", WIDGET_FILE)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
