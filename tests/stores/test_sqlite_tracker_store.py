"""`make run`'s default tracker store: Rasa's SQL store on a local SQLite file, in WAL mode.

Rasa falls back to an in-memory store, with only a warning, when it cannot import a custom
store class; these tests make sure the file is really written and read back.
"""

from __future__ import annotations

import sqlite3

import pytest

from stack.process import Stack
from tests.servers import domain_responses, rasa_url, say, services_of, stack_config, tracker_events, turns

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_conversations_go_to_a_wal_mode_sqlite_file_and_survive_a_rasa_restart(tmp_path):
    config = stack_config(tmp_path / "run", {})
    rasa = services_of(config, {})["rasa"]
    database = config.run_dir / "tracker.db"
    greetings = domain_responses()["utter_greet"]
    with Stack([rasa], log_dir=tmp_path / "logs") as stack:
        assert say(rasa_url(rasa), "sqlite-visitor", "hi")[-1] in greetings
        with sqlite3.connect(database) as connection:  # WAL: readers do not wait for Rasa
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            stored = connection.execute(
                "SELECT type_name FROM events WHERE sender_id = 'sqlite-visitor' ORDER BY id").fetchall()
        assert ("user",) in stored and ("bot",) in stored
        stack.stop(["rasa"])
        stack.start(["rasa"])
        assert say(rasa_url(rasa), "sqlite-visitor", "hello again")[-1] in greetings
        users = [text for kind, text in turns(tracker_events(rasa_url(rasa), "sqlite-visitor")) if kind == "user"]
        assert users == ["hi", "hello again"]
