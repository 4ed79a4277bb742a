"""The chart's log settings: JSON lines by default in every service of ours, the sender-hash salt from the Secret."""

from __future__ import annotations

import base64

from tests.deploy.conftest import RELEASE, by_name, of_kind, render, render_error

OURS = ("rasa", "actions", "llm")


def env_of(objects, component: str) -> dict:
    container = by_name(objects, "Deployment", f"{RELEASE}-{component}")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_every_service_writes_json_lines_by_default_with_an_unsalted_hash():
    objects = render()
    for component in OURS:
        env = env_of(objects, component)
        assert env["LOG_FORMAT"]["value"] == "json", component
        assert "LOG_SENDER_SALT" not in env, component
    assert all(env_of(render(sets=("logging.format=text",)), c)["LOG_FORMAT"]["value"] == "text" for c in OURS)
    assert "/logging/format': value must be one of 'text', 'json'" in render_error(sets=("logging.format=xml",))


def test_the_salt_comes_from_the_secret_and_is_generated_once():
    objects = render(sets=("logging.senderSalt=true",))
    for component in OURS:
        ref = env_of(objects, component)["LOG_SENDER_SALT"]
        assert "value" not in ref and ref["valueFrom"]["secretKeyRef"]["key"] == "log-sender-salt", component
    (secret,) = of_kind(objects, "Secret")
    salt = base64.b64decode(secret["data"]["log-sender-salt"]).decode()
    assert len(salt) == 32 and salt.isalnum()
    given = render(sets=("logging.senderSalt=true", "secrets.values.logSenderSalt=our-salt"))
    assert base64.b64decode(of_kind(given, "Secret")[0]["data"]["log-sender-salt"]).decode() == "our-salt"


def test_vllm_gets_no_settings_of_ours():
    env = env_of(render(sets=("llm.engine=vllm", "logging.senderSalt=true")), "vllm")
    assert "LOG_FORMAT" not in env and "LOG_SENDER_SALT" not in env
