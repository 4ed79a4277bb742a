"""Each service its own settings: no variable name means one thing to one service and another to the next.

Every service's settings module says which variables it reads (``READS``, built from the names it
defines); the supervisor hands each child only those (stack/services.py). These tests keep the
sets apart: the LLM service owns ``LLM_*``, the action server ``ACTIONS_*`` and its own names,
Rasa the extension's and Rasa's, and only the variables shared by design are read by two.
"""

from __future__ import annotations

import dataclasses

import pytest

from actions import config as actions_config
from llm import config as llm_config
from ridgeline import logs
from ridgeline import settings as ground_floor
from ridgeline_rasa import launch
from ridgeline_rasa import settings as rasa_settings

LLM_VARIABLES = tuple(llm_config.env_var(f.name) for f in dataclasses.fields(llm_config.ServiceConfig)
                      if f.name != "sources")
RASA_VARIABLES = (*rasa_settings.VARIABLES, *launch.ENV, "ACTION_SERVER_TOKEN", "DB_HOST", "REDIS_HOST")
READS = {"actions": actions_config.READS, "llm": llm_config.READS, "rasa": launch.READS}
VARIABLES = {"actions": actions_config.VARIABLES, "llm": (*LLM_VARIABLES, *logs.VARIABLES), "rasa": RASA_VARIABLES}
# Read by two services on purpose, with one meaning: the token Rasa sends and the action server
# checks; and, until the old names go, the LLM service's API key, which the action server sends
# (its old name of ACTIONS_LLM_API_KEY). The log format and the sender-hash salt (ridgeline.logs) are
# every service's: one format and one salt per deployment, or a turn cannot be followed.
LOGS = set(logs.VARIABLES)
SHARED = {frozenset({"actions", "rasa"}): {"ACTION_SERVER_TOKEN", *LOGS},
          frozenset({"actions", "llm"}): {"LLM_API_KEY", *LOGS},
          frozenset({"llm", "rasa"}): LOGS}


def test_each_service_reads_the_variables_it_defines():
    for service, names in VARIABLES.items():
        assert all(READS[service].allows(name) for name in names), service


@pytest.mark.parametrize("reader", list(READS))
@pytest.mark.parametrize("owner", list(VARIABLES))
def test_no_service_is_given_another_services_variables(owner, reader):
    if owner == reader:
        return
    shared = SHARED.get(frozenset({owner, reader}), set())
    given = {name for name in VARIABLES[owner] if READS[reader].allows(name)} - shared
    assert not given, f"{reader} would be given {owner}'s {sorted(given)}: give each service's variables its prefix"


def test_the_prefixes_say_whose_a_variable_is():
    assert all(name.startswith("LLM_") for name in LLM_VARIABLES)
    assert not [name for name in actions_config.VARIABLES if name.startswith("LLM_")], "LLM_* is the LLM service's"
    assert not [name for name in (*rasa_settings.VARIABLES, *launch.ENV) if name.startswith(("LLM_", "ACTIONS_"))]


def test_the_old_names_are_not_another_services_names():
    """An old name of the action server's is read for one release: it must not be one the LLM service reads."""
    assert set(actions_config.RENAMED) & set(LLM_VARIABLES) == {"LLM_API_KEY"}  # the same key on both sides
    assert set(actions_config.RENAMED.values()) <= set(actions_config.VARIABLES)


def test_every_service_reads_the_log_settings():
    assert all(name in VARIABLES[service] and READS[service].allows(name) for service in READS for name in LOGS)


def test_the_process_basics_are_no_services_settings():
    for service, names in VARIABLES.items():
        basic = [name for name in names if ground_floor.Allowlist().allows(name)]
        assert not basic, f"{service}'s {basic} would reach every service as a process basic"
