"""A website visitor in a real browser: the npm chat widget over Rasa's socket.io channel."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import service_url
from tests.support.servers import domain_responses, tracker_events, turns

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER = ".rw-message .rw-client"
BOT = ".rw-message .rw-response"
OPEN_QUESTION = "what sleeping bag should I take for a winter camp in the Alps?"


def texts(driver, selector: str) -> list[str]:
    """Rendered texts, in page order (the typing indicator, still empty, is left out)."""
    shown = driver.execute_script(  # read in one go: React re-renders the list as messages arrive
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)", selector)
    return [" ".join(text.split()) for text in shown if text and text.strip()]


def normalised(text: str) -> str:
    return " ".join(text.split())


def wait_for_count(driver, selector: str, count: int, timeout_s: float = 60) -> list[str]:
    WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(lambda d: len(texts(d, selector)) >= count)
    return texts(driver, selector)


def send(driver, text: str) -> None:
    def ready(d):
        box = d.find_element(By.CSS_SELECTOR, "form.rw-sender .rw-new-message")
        return box if box.is_displayed() and box.is_enabled() else None

    box = WebDriverWait(driver, 30, poll_frequency=0.2,
                        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(ready)
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def llm_requests_total(stack) -> float:
    body = httpx.get(f"{service_url(stack, 'llm')}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r'^llm_requests_total\{[^}]*\} ([0-9.e+]+)$', body, re.M))


def session_id(driver) -> str:
    return json.loads(driver.execute_script("return window.localStorage.getItem('chat_session')"))["session_id"]


def test_visitor_chats_and_the_conversation_survives_a_reload(webchat_stack, browser, artifacts):
    responses = domain_responses()
    scripted = {normalised(t) for variants in responses.values() for t in variants}
    browser.get(service_url(webchat_stack, "webchat") + "/")

    send(browser, "hi")
    assert wait_for_count(browser, BOT, 1)[0] in {normalised(t) for t in responses["utter_greet"]}

    before = llm_requests_total(webchat_stack)
    send(browser, OPEN_QUESTION)
    llm_reply = wait_for_count(browser, BOT, 2)[1]
    assert llm_requests_total(webchat_stack) == before + 1, "the LLM service did not see the question"
    assert llm_reply and llm_reply not in scripted, f"expected the LLM's words, got {llm_reply!r}"
    browser.save_screenshot(str(artifacts / "1-conversation.png"))

    conversation_id = session_id(browser)
    shown_before = texts(browser, ".rw-message")
    browser.refresh()
    WebDriverWait(browser, 30, poll_frequency=0.2).until(lambda d: texts(d, ".rw-message") == shown_before)
    assert session_id(browser) == conversation_id

    send(browser, "thanks")
    assert wait_for_count(browser, BOT, 3)[2] in {normalised(t) for t in responses["utter_youre_welcome"]}
    time.sleep(0.5)  # let the widget finish its message animation before the picture
    browser.save_screenshot(str(artifacts / "2-after-reload.png"))

    # Rasa kept one conversation under the id the browser stored: the reload continued it.
    said = [text for kind, text in turns(tracker_events(service_url(webchat_stack, "rasa"), conversation_id))
            if kind == "user"]
    assert said == ["hi", OPEN_QUESTION, "thanks"]


RECORD_TYPING = """
window.typingStates = [];
new MutationObserver(() => window.typingStates.push(!document.getElementById('typing').hidden))
  .observe(document.getElementById('typing'), {attributes: true, attributeFilter: ['hidden']});
"""


def test_the_visitor_sees_sherpa_typing_until_the_reply_arrives(webchat_stack, browser):
    browser.get(service_url(webchat_stack, "webchat") + "/")
    typing = browser.find_element(By.ID, "typing")
    assert not typing.is_displayed()
    browser.execute_script(RECORD_TYPING)
    send(browser, OPEN_QUESTION)
    wait_for_count(browser, BOT, 1)
    WebDriverWait(browser, 30, poll_frequency=0.1).until(lambda d: not d.find_element(By.ID, "typing").is_displayed())
    # Every change of the indicator, in order: shown when the question went out, hidden with the reply.
    assert browser.execute_script("return window.typingStates") == [True, False]


def test_the_widget_comes_from_this_server_not_a_cdn(webchat_stack):
    base = service_url(webchat_stack, "webchat")
    page = httpx.get(f"{base}/", timeout=10).text
    sources = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert "vendor/rasa-webchat.js" in sources
    assert not [s for s in sources if "://" in s or s.startswith("//")], sources
    widget = httpx.get(f"{base}/vendor/rasa-webchat.js", timeout=10)
    assert widget.status_code == 200 and "WebChat" in widget.text[:2000]
    assert httpx.get(f"{base}/node_modules/rasa-webchat/package.json", timeout=10).status_code == 404
    config = httpx.get(f"{base}/config.js", timeout=10).text
    assert service_url(webchat_stack, "rasa").rsplit(":", 1)[1] in config


def test_slack_and_telegram_are_off_without_their_secrets(webchat_stack):
    rasa = service_url(webchat_stack, "rasa")
    slack = httpx.post(f"{rasa}/webhooks/slack/webhook", json={"type": "event_callback"}, timeout=10)
    telegram = httpx.post(f"{rasa}/webhooks/telegram/webhook", json={"update_id": 1}, timeout=10)
    assert slack.status_code == 404 and "SLACK_BOT_TOKEN" in slack.json()["error"]
    assert telegram.status_code == 404 and "TELEGRAM_ACCESS_TOKEN" in telegram.json()["error"]


def test_a_product_button_click_shows_that_products_details(webchat_stack, browser, artifacts):
    """Product search in the widget: three products with buttons; clicking "Details: ..." runs
    action_product_details for that SKU (its payload goes to Rasa as the intent with the entity)."""
    from ridgeline.catalog import read_catalog
    from ridgeline.shapes import SKU
    catalog = {p.sku: p for p in read_catalog()}
    browser.get(service_url(webchat_stack, "webchat") + "/")
    send(browser, "do you have a 3 person tent under £400?")
    results = wait_for_count(browser, BOT, 1)[0]
    shown = re.findall(SKU, results)
    assert len(shown) == 3, results
    buttons = WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".rw-replies .rw-reply") or None)
    titles = [b.text for b in buttons]
    second = catalog[shown[1]]
    assert f"Details: {second.name}" in titles and "Compare these" in titles, titles
    buttons[titles.index(f"Details: {second.name}")].click()
    details = wait_for_count(browser, BOT, 2)[1]
    assert details.startswith(f"{second.name} ({second.sku}) by {second.brand}"), details
    time.sleep(0.5)
    browser.save_screenshot(str(artifacts / "3-product-details.png"))


def test_an_llm_reply_gets_the_verdict_buttons_and_a_click_is_recorded(webchat_stack, browser, artifacts):
    """The two quick replies under the LLM's reply (and under no scripted one); a click on "Not helpful"
    is thanked, recorded on the tracker as the verdict on that reply, and counted in Rasa's /metrics."""
    from ridgeline import feedback
    responses = domain_responses()
    browser.get(service_url(webchat_stack, "webchat") + "/")
    send(browser, "hi")
    wait_for_count(browser, BOT, 1)
    assert not browser.find_elements(By.CSS_SELECTOR, ".rw-replies .rw-reply"), "a scripted reply got buttons"

    send(browser, OPEN_QUESTION)
    llm_reply = wait_for_count(browser, BOT, 2)[1]
    buttons = WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".rw-replies .rw-reply") or None)
    titles = [b.text for b in buttons]
    assert titles == [feedback.BUTTON_TITLES["up"], feedback.BUTTON_TITLES["down"]], titles
    browser.save_screenshot(str(artifacts / "4-verdict-buttons.png"))

    rasa = service_url(webchat_stack, "rasa")
    counted_before = rasa_counts(rasa)
    buttons[1].click()
    thanks = wait_for_count(browser, BOT, 3)[2]
    assert thanks in {normalised(t) for t in responses[feedback.THANKS_RESPONSE]}
    counted_after = rasa_counts(rasa)
    assert counted_after['rasa_feedback_total{verdict="down"}'] == counted_before['rasa_feedback_total{verdict="down"}'] + 1
    assert counted_after['rasa_turns_total{channel="socketio"}'] == counted_before['rasa_turns_total{channel="socketio"}']

    events = tracker_events(rasa, session_id(browser))
    [judged] = [e for e in events if feedback.reply_id_of(e)]
    assert normalised(judged["text"]) == llm_reply
    assert [v for v in map(feedback.verdict_of, events) if v] == [feedback.Verdict("down", judged["metadata"]["reply_id"])]


def rasa_counts(rasa: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of Rasa's /metrics, as the exposition text spells them."""
    body = httpx.get(f"{rasa}/metrics", timeout=10).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+\{[^}]*\}|\w+) ([0-9.e+-]+)$", body, re.M)}
