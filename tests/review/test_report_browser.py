"""The HTML report in headless Chromium (tests/browser's driver): it renders offline, without scripts."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.slow]


def test_the_report_renders_the_list_and_the_transcripts_without_scripts(review, tmp_path, browser):  # noqa: F811
    page = tmp_path / "report.html"
    code, _, _ = review("report", "--output", str(page))
    assert code == 0
    html = page.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    assert "RG-10421" not in html and "anna.berg@example.com" not in html

    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})  # no JS needed
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#conversations tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [
        "visitor-silent", "visitor-order", "visitor-fallback"]
    assert rows[1].find_element(By.CSS_SELECTOR, ".reasons").text.split() == ["low_confidence", "handoff"]
    rows[1].find_element(By.TAG_NAME, "a").click()  # the link goes to that conversation's transcript
    section = browser.find_element(By.CSS_SELECTOR, browser.current_url[browser.current_url.index("#"):])
    assert section.find_element(By.TAG_NAME, "h2").text == "Conversation visitor-order"
    transcript = [tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))[1:]
                  for tr in section.find_elements(By.CSS_SELECTOR, "table.transcript tbody tr")]
    assert ("user", "where is my order <order-id>? mail me at <email> (intent check_order_status 0.42; entities "
                    "order_id=<order-id>, email=<email>; via socketio)") in transcript
    assert ("bot", "I'll pass this conversation to our support team. (utter_handoff)") in transcript
    assert ("slot", "handoff_requested = true") in transcript
    # styled by its own stylesheet: the reason badges have their background
    badge = rows[0].find_element(By.CSS_SELECTOR, ".reasons span")
    assert badge.value_of_css_property("background-color") == "rgba(255, 242, 214, 1)"
