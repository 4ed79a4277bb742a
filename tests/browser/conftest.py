"""The whole stack as `make run` starts it, and headless Chromium (Debian's) driven by Selenium.

LLM service with a tiny random model, action server, Rasa with the trained model and the
default credentials (Slack and Telegram off), and the webchat page. Screenshots go to
var/artifacts/browser/ (git-ignored), where CI can pick them up.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tools.testing.tiny_model import build_tiny_model
from stack.process import Stack
from tests.support.servers import ROOT, services_of, stack_config

ARTIFACTS = ROOT / "var" / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Secrets a developer may have exported: the default stack must run without them.
CHANNEL_SECRETS_UNSET = {name: "" for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
                                               "TELEGRAM_ACCESS_TOKEN", "TELEGRAM_SECRET_TOKEN")}


@pytest.fixture(scope="session")
def webchat_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("webchat-stack")
    config = stack_config(root / "run", {}, llm_model=str(build_tiny_model(root / "tiny-qwen2", seed=0)),
                          llm_timeout_s=15.0)
    services = services_of(config, {})
    services["rasa"].env.update(CHANNEL_SECRETS_UNSET)
    services["actions"].env.update({"ORDERS_DB_URL": f"sqlite:///{root / 'orders.db'}", "ACTIONS_LLM_MAX_TOKENS": "24"})
    services["llm"].env["LLM_CPU_THREADS"] = "1"
    with Stack(list(services.values()), log_dir=root / "logs") as stack:
        yield stack


def service_url(stack: Stack, name: str) -> str:
    return f"http://127.0.0.1:{next(s.port for s in stack.services if s.name == name)}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def browser():
    """Headless Chromium with a fresh profile (so a fresh localStorage)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: it is in the dev extra; run `make setup`.")

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run scripts/system_deps.sh (make setup does), "
                        "or apt-get install chromium chromium-driver.")
    profile = tempfile.mkdtemp(prefix="pytest-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1100,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
