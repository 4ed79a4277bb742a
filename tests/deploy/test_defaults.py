"""Each default is written once, in its service's settings module; what repeats it is kept equal here.

The settings modules (actions/config.py, llm/config.py, ridgeline_rasa/settings.py) hold the
defaults. The chart's values.yaml, docker-compose.yml's ``${VAR:-default}`` and .env.example
write some of them again, for operators to read and change; where compose leaves a variable
empty (``${ACTIONS_LLM_TIMEOUT_S:-}``) the service's own default applies. Change a default on
either side and a test here fails, naming the variable and both values.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlsplit

import pytest
import yaml

from actions import config as actions_config
from actions.config import ActionServerConfig, from_env, llm_url
from llm.config import DEFAULT_MODEL, ServiceConfig
from ridgeline_rasa.settings import GateSettings
from stack.services import StackConfig
from tests.deploy.compose_spec import interpolate, read_env_file
from tests.deploy.conftest import CHART, REPO

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
ENV_EXAMPLE = read_env_file((REPO / ".env.example").read_text())
LLM_DOCKERFILE = (REPO / "docker" / "llm.Dockerfile").read_text()

# Where each default is written: variable -> settings module.
HOME = {**{name: "actions/config.py" for name in actions_config.VARIABLES},
        **{name: "ridgeline_rasa/settings.py" for name in ("MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES",
                                                             "RATE_LIMIT_WINDOW_S")},
        "LLM_MODEL": "llm/config.py", "LLM_PORT": "llm/config.py"}


def settings_defaults() -> dict[str, object]:
    """The defaults, as the settings modules define them, by environment variable."""
    actions, gate = ActionServerConfig(), GateSettings()
    return {
        "ACTIONS_LLM_TIMEOUT_S": actions.llm_timeout_s,
        "ACTIONS_LLM_MAX_TOKENS": actions.llm_max_tokens,
        "ACTIONS_LLM_TEMPERATURE": actions.llm_temperature,
        "ACTIONS_LLM_HISTORY_TURNS": actions.history_turns,
        "MAX_USER_CHARS": actions.max_user_chars,
        "ORDERS_SEED_SAMPLE": actions.orders_seed_sample,
        "MAX_MESSAGE_CHARS": gate.max_message_chars,
        "RATE_LIMIT_MESSAGES": gate.rate_limit_messages,
        "RATE_LIMIT_WINDOW_S": gate.rate_limit_window_s,
        "LLM_MODEL": DEFAULT_MODEL,
        "LLM_PORT": ServiceConfig.port,
    }


def chart_defaults(values: dict) -> dict[str, object]:
    """What values.yaml sets each variable to."""
    actions, limits, llm = values["actions"], values["rasa"]["limits"], values["llm"]
    return {
        "ACTIONS_LLM_TIMEOUT_S": actions["llm"]["timeoutSeconds"],
        "ACTIONS_LLM_MAX_TOKENS": actions["llm"]["maxTokens"],
        "ACTIONS_LLM_TEMPERATURE": actions["llm"]["temperature"],
        "ACTIONS_LLM_HISTORY_TURNS": actions["llm"]["historyTurns"],
        "MAX_USER_CHARS": actions["maxUserChars"],
        "ORDERS_SEED_SAMPLE": actions["ordersDatabase"]["seedSample"],
        "MAX_MESSAGE_CHARS": limits["maxMessageChars"],
        "RATE_LIMIT_MESSAGES": limits["rateLimitMessages"],
        "RATE_LIMIT_WINDOW_S": limits["rateLimitWindowSeconds"],
        "LLM_MODEL": llm["model"]["repository"],
        "LLM_PORT": llm["service"]["port"],
    }


def compose_defaults(compose: dict) -> dict[str, str]:
    """``VAR: ${VAR:-default}`` in any service's environment: VAR -> default (empty: the service's own)."""
    found = {}
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
            if match and match.group(1) == name:
                found[name] = match.group(2)
    return found


def _as(expected: object, raw: object) -> object:
    if isinstance(raw, str) and not isinstance(expected, str):
        if isinstance(expected, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        try:
            return type(expected)(raw)
        except ValueError:
            return raw
    return raw


def disagreements(defaults: dict[str, object], found: dict[str, object], where: str) -> list[str]:
    """One sentence per variable whose value in ``where`` is not its settings module's default."""
    return [f"{where} sets {name}={value!r}, but {HOME[name]}'s default is {defaults[name]!r}: change both"
            for name, value in found.items()
            if name in defaults and value != "" and _as(defaults[name], value) != defaults[name]]


def test_the_charts_values_are_the_settings_defaults():
    assert disagreements(settings_defaults(), chart_defaults(VALUES), "helm/ridgeline/values.yaml") == []


def test_compose_and_env_example_are_the_settings_defaults():
    defaults = settings_defaults()
    in_compose = compose_defaults(COMPOSE)
    assert {"MAX_MESSAGE_CHARS", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_WINDOW_S", "LLM_MODEL",
            "ACTIONS_LLM_TIMEOUT_S"} <= set(in_compose), "the check would see nothing"
    assert disagreements(defaults, in_compose, "docker-compose.yml") == []
    assert {"ACTIONS_LLM_TIMEOUT_S", "LLM_MODEL", "MAX_MESSAGE_CHARS"} <= set(ENV_EXAMPLE)
    assert disagreements(defaults, ENV_EXAMPLE, ".env.example") == []
    image_port = re.search(r"\bLLM_PORT=(\d+)", LLM_DOCKERFILE).group(1)
    assert disagreements(defaults, {"LLM_PORT": image_port}, "docker/llm.Dockerfile") == []


def test_a_changed_default_on_either_side_is_caught():
    values = copy.deepcopy(VALUES)
    values["actions"]["llm"]["timeoutSeconds"] = 25
    assert disagreements(settings_defaults(), chart_defaults(values), "values.yaml") == [
        "values.yaml sets ACTIONS_LLM_TIMEOUT_S=25, but actions/config.py's default is 20.0: change both"]
    changed_module = {**settings_defaults(), "ACTIONS_LLM_MAX_TOKENS": 120, "RATE_LIMIT_WINDOW_S": 60.0}
    assert len(disagreements(changed_module, chart_defaults(VALUES), "values.yaml")) == 2
    assert len(disagreements(changed_module, compose_defaults(COMPOSE), "docker-compose.yml")) == 1
    assert len(disagreements({**settings_defaults(), "ACTIONS_LLM_TIMEOUT_S": 30.0}, ENV_EXAMPLE, ".env")) == 1


@pytest.mark.parametrize("env", [ENV_EXAMPLE, {**ENV_EXAMPLE, "ACTIONS_LLM_TIMEOUT_S": ""}],
                         ids=["env-example", "left-empty"])
def test_the_action_server_in_compose_runs_on_its_defaults(env):
    """What compose hands the action server, read by its settings module."""
    actions = interpolate(COMPOSE, env)["services"]["actions"]["environment"]
    config = from_env({name: str(value) for name, value in actions.items()})
    assert config.llm_timeout_s == ActionServerConfig.llm_timeout_s
    assert config.llm_max_tokens == ActionServerConfig.llm_max_tokens
    assert config.llm_base_url == llm_url("llm", ServiceConfig.port)
    assert config.llm_model == ENV_EXAMPLE["LLM_SERVED_MODEL_NAME"]


def test_compose_still_passes_an_old_timeout_from_an_older_env_file():
    older = {k: v for k, v in ENV_EXAMPLE.items() if k != "ACTIONS_LLM_TIMEOUT_S"} | {"LLM_TIMEOUT_S": "30"}
    actions = interpolate(COMPOSE, older)["services"]["actions"]["environment"]
    assert from_env({name: str(value) for name, value in actions.items()}).llm_timeout_s == 30.0


def test_one_llm_address_and_model_for_every_launcher():
    """The action server's default LLM URL, make run's and the chart's are the LLM service's port, with /v1."""
    default = urlsplit(ActionServerConfig.llm_base_url)
    assert (default.port, default.path) == (ServiceConfig.port, "/v1")
    assert StackConfig().llm_port == ServiceConfig.port and StackConfig().llm_model == DEFAULT_MODEL
    assert llm_url("localhost") == ActionServerConfig.llm_base_url
