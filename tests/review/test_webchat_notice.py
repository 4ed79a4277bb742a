"""The webchat page's privacy notice: how long conversations are kept, whom to email, which id to quote."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from html.parser import HTMLParser

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from review.settings import DEFAULT_RETENTION_DAYS
from tests.browser.conftest import browser  # noqa: F401  (the fixture)
from tests.support.servers import ROOT

WEB = ROOT / "web"


def notice_text() -> str:
    html = (WEB / "index.html").read_text()
    footer = re.search(r'<footer id="privacy-notice".*?</footer>', html, re.S).group(0)
    parser = HTMLParser()
    parts: list[str] = []
    parser.handle_data = parts.append
    parser.feed(footer)
    return " ".join("".join(parts).split())


def test_the_notice_names_the_retention_and_the_stores_support_address():
    email = yaml.safe_load((ROOT / "knowledge" / "store.yml").read_text())["store"]["support_email"]
    assert notice_text() == (f"We keep conversations for {DEFAULT_RETENTION_DAYS} days. To have yours deleted, email "
                             f"{email} quoting your conversation id (shown once the chat connects).")
    assert f'href="mailto:{email}"' in (WEB / "index.html").read_text()


@pytest.fixture
def web_page():
    """web/ over HTTP (as stack/webchat.py serves it), without the widget: the notice needs neither it nor Rasa."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(WEB))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


@pytest.mark.slow
def test_the_notice_shows_this_visitors_conversation_id(web_page, browser):  # noqa: F811
    browser.get(web_page)
    notice = browser.find_element(By.ID, "privacy-notice")
    assert notice.is_displayed() and "(shown once the chat connects)" in notice.text
    # the widget stores the session once connected; the notice picks it up without a reload
    session = {"session_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}
    browser.execute_script("localStorage.setItem('chat_session', arguments[0])", json.dumps(session))
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: d.find_element(By.ID, "conversation-id").text == session["session_id"])
    link = browser.find_element(By.ID, "erasure-email").get_attribute("href")
    assert link.startswith("mailto:help@ridgeline-outfitters.example?subject=") and session["session_id"] in link
