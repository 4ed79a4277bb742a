"""A hand-written subset of the Compose Specification, as JSON Schema, and Compose's interpolation.

No package on PyPI ships the official compose-spec JSON schema for offline use, and no
container engine runs here, so the tests check docker-compose.yml against this subset: every
top-level and service key the specification defines (unknown keys are errors, as in the
specification), with full types for the parts this project uses (build, healthcheck,
depends_on, deploy's device reservations, ports, volumes, tmpfs, networks, logging, profiles).
Where a real `docker compose` is installed, test_compose.py also runs `docker compose config`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$"}
STRING_LIST = {"type": "array", "items": {"type": "string"}}
LIST_OR_DICT = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    ]
}
STRING_OR_LIST = {"oneOf": [{"type": "string"}, STRING_LIST]}
EXTENSIONS = {"^x-": {}}

SERVICE_KEYS = """
annotations attach build blkio_config cap_add cap_drop cgroup cgroup_parent command configs
container_name cpu_count cpu_percent cpu_shares cpu_quota cpu_period cpu_rt_period cpu_rt_runtime
cpus cpuset credential_spec depends_on deploy develop device_cgroup_rules devices dns dns_opt
dns_search domainname entrypoint env_file environment expose extends external_links extra_hosts
gpus group_add healthcheck hostname image init ipc isolation label_file labels links logging
mac_address mem_limit mem_reservation mem_swappiness memswap_limit models network_mode networks
oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop privileged
profiles provider pull_policy pull_refresh_after read_only restart runtime scale secrets
security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty
ulimits use_api_socket user userns_mode uts volumes volumes_from working_dir
""".split()

BUILD = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": EXTENSIONS,
            "properties": {k: {} for k in (
                "context dockerfile dockerfile_inline entitlements args ssh labels cache_from cache_to "
                "no_cache additional_contexts network provenance sbom pull target shm_size extra_hosts "
                "isolation privileged secrets tags ulimits platforms").split()}
            | {"context": {"type": "string"}, "dockerfile": {"type": "string"}, "target": {"type": "string"}},
        },
    ]
}

HEALTHCHECK = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "properties": {
        "disable": {"type": "boolean"},
        "interval": DURATION,
        "retries": {"type": "integer", "minimum": 0},
        "test": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
        "timeout": DURATION,
        "start_period": DURATION,
        "start_interval": DURATION,
    },
}

DEPENDS_ON = {
    "oneOf": [
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "patternProperties": EXTENSIONS,
                "properties": {
                    "condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]},
                    "required": {"type": "boolean"},
                    "restart": {"type": "boolean"},
                },
                "required": ["condition"],
            },
        },
    ]
}

DEVICE = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "properties": {
        "capabilities": STRING_LIST,
        "count": {"oneOf": [{"type": "integer"}, {"const": "all"}]},
        "device_ids": STRING_LIST,
        "driver": {"type": "string"},
        "options": LIST_OR_DICT,
    },
    "required": ["capabilities"],
}

RESOURCE = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "properties": {
        "cpus": {"type": ["number", "string"]},
        "memory": {"type": "string"},
        "pids": {"type": "integer"},
        "generic_resources": {"type": "array"},
        "devices": {"type": "array", "items": DEVICE},
    },
}

DEPLOY = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "properties": {
        "mode": {"type": "string"},
        "endpoint_mode": {"type": "string"},
        "replicas": {"type": "integer"},
        "labels": LIST_OR_DICT,
        "rollback_config": {"type": "object"},
        "update_config": {"type": "object"},
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": EXTENSIONS,
            "properties": {"limits": RESOURCE, "reservations": RESOURCE},
        },
        "restart_policy": {"type": "object"},
        "placement": {"type": "object"},
    },
}

PORT = {
    "oneOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^((\[?[0-9a-fA-F:.]+\]?):)?([0-9]+(-[0-9]+)?:)?[0-9]+(-[0-9]+)?(/(tcp|udp|sctp))?$"},
        {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": EXTENSIONS,
            "properties": {
                "name": {"type": "string"},
                "mode": {"type": "string"},
                "host_ip": {"type": "string"},
                "target": {"type": "integer"},
                "published": {"type": ["string", "integer"]},
                "protocol": {"type": "string"},
                "app_protocol": {"type": "string"},
            },
        },
    ]
}

SERVICE_VOLUME = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": EXTENSIONS,
            "required": ["type"],
            "properties": {
                "type": {"enum": ["bind", "volume", "tmpfs", "cluster", "npipe", "image"]},
                "source": {"type": "string"},
                "target": {"type": "string"},
                "read_only": {"type": "boolean"},
                "consistency": {"type": "string"},
                "bind": {"type": "object"},
                "volume": {"type": "object"},
                "image": {"type": "object"},
                "tmpfs": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"size": {"type": ["integer", "string"]}, "mode": {"type": ["integer", "string"]}},
                },
            },
        },
    ]
}

SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "properties": {key: {} for key in SERVICE_KEYS}
    | {
        "build": BUILD,
        "cap_drop": STRING_LIST,
        "command": STRING_OR_LIST,
        "depends_on": DEPENDS_ON,
        "deploy": DEPLOY,
        "entrypoint": STRING_OR_LIST,
        "environment": LIST_OR_DICT,
        "healthcheck": HEALTHCHECK,
        "image": {"type": "string"},
        "logging": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"driver": {"type": "string"}, "options": {"type": "object"}},
        },
        "networks": {
            "oneOf": [
                STRING_LIST,
                {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [
                            {"type": "null"},
                            {"type": "object", "properties": {"aliases": STRING_LIST}},
                        ]
                    },
                },
            ]
        },
        "ports": {"type": "array", "items": PORT},
        "profiles": STRING_LIST,
        "read_only": {"type": "boolean"},
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "security_opt": STRING_LIST,
        "stop_grace_period": DURATION,
        "tmpfs": STRING_OR_LIST,
        "user": {"type": "string"},
        "volumes": {"type": "array", "items": SERVICE_VOLUME},
    },
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Compose Specification (hand-written subset)",
    "type": "object",
    "additionalProperties": False,
    "patternProperties": EXTENSIONS,
    "required": ["services"],
    "properties": {
        "version": {"type": "string"},
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "include": {"type": "array"},
        "services": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-zA-Z0-9._-]+$"},
            "additionalProperties": SERVICE,
        },
        "networks": {"type": "object"},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "secrets": {"type": "object"},
        "configs": {"type": "object"},
        "models": {"type": "object"},
    },
}

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


class InterpolationError(ValueError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation over a loaded YAML tree: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        braced = _BRACED.match(match.group("braced"))
        if not braced:
            raise InterpolationError(f"invalid interpolation {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg")
        current = env.get(name)
        unset_or_empty = current is None or current == ""
        if op is None:
            return current or ""
        if op == ":-":
            return arg if unset_or_empty else current
        if op == "-":
            return arg if current is None else current
        if op in {":?", "?"}:
            if (op == ":?" and unset_or_empty) or (op == "?" and current is None):
                raise InterpolationError(f"required variable {name} is missing: {arg}")
            return current
        if op == ":+":
            return "" if unset_or_empty else arg
        return "" if current is None else arg  # "+"

    return _VARIABLE.sub(substitute, value)


def required_variables(text: str) -> set[str]:
    """Names used as ${NAME:?...} or ${NAME?...} in a Compose file."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text))


def read_env_file(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env
