"""Which stores `make run` gives Rasa (stack/services.py), from the environment: no servers needed."""

from __future__ import annotations

import yaml

from stack.services import StackConfig, write_rasa_endpoints


def endpoints_for(env: dict[str, str], tmp_path) -> dict:
    config = StackConfig.from_env(env)
    config = StackConfig(**{**config.__dict__, "run_dir": tmp_path})
    return yaml.safe_load(write_rasa_endpoints(config).read_text())


def test_without_store_variables_conversations_go_to_sqlite_and_locks_stay_in_memory(tmp_path):
    endpoints = endpoints_for({}, tmp_path)
    assert endpoints["tracker_store"] == {"type": "ridgeline_rasa.tracker_store.SQLiteTrackerStore",
                                          "db": str(tmp_path / "tracker.db")}
    assert "lock_store" not in endpoints


def test_db_and_redis_variables_select_postgresql_and_redis_without_writing_secrets(tmp_path):
    env = {"DB_HOST": "db", "DB_PORT": "5432", "DB_USER": "rasa", "DB_PASSWORD": "s3cret", "DB_NAME": "rasa",
           "REDIS_HOST": "redis", "REDIS_PASSWORD": "t0psecret"}
    endpoints = endpoints_for(env, tmp_path)
    assert endpoints["tracker_store"] == {"type": "SQL", "dialect": "postgresql", "url": "${DB_HOST}",
                                          "port": "${DB_PORT}", "username": "${DB_USER}",
                                          "password": "${DB_PASSWORD}", "db": "${DB_NAME}"}
    assert endpoints["lock_store"] == {"type": "redis", "url": "${REDIS_HOST}", "password": "${REDIS_PASSWORD}",
                                       "key_prefix": "ridgeline"}
    written = (tmp_path / "endpoints.yml").read_text()
    assert "s3cret" not in written and "t0psecret" not in written
    assert endpoints["action_endpoint"]["url"].endswith(":5055/webhook")
