"""`make run`'s default tracker store: Rasa's SQL store on a local SQLite file, in WAL mode.

Rasa falls back to an in-memory store, with only a warning, when it cannot import a custom
store class; these tests make sure the file is really written and read back.
"""

from __future__ import annotations

import sqlite3

import pytest

from stack.process import Stack
from tests.support.servers import domain_responses, rasa_url, say, services_of, stack_config, tracker_events, turns

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


EQUIVALENCE_SCRIPT = r"""
import asyncio, sqlite3, sys
from pathlib import Path
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker
from ridgeline_rasa.tracker_store import SQLiteTrackerStore

tmp = Path(sys.argv[1])
domain = Domain.from_yaml('''
version: "3.1"
intents: [greet, order_status]
entities: [order_id]
slots:
  order_id: {type: text, mappings: [{type: from_entity, entity: order_id}]}
responses:
  utter_greet: [{text: hi}]
''')
stores = {"rasa": SQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp / "rasa.db")),
          "ours": SQLiteTrackerStore(domain=domain, db=str(tmp / "ours.db"))}

def turn(t, text, intent, stamp):
    return [UserUttered(text, {"name": intent, "confidence": 0.9}, timestamp=stamp),
            ActionExecuted("utter_greet", timestamp=stamp + 0.1), BotUttered("hi", timestamp=stamp + 0.2),
            ActionExecuted("action_listen", timestamp=stamp + 0.3)]

async def main():
    script = {"a": [[ActionExecuted("action_session_start", timestamp=1.0), SessionStarted(timestamp=1.0),
                     ActionExecuted("action_listen", timestamp=1.0)],
                    turn(None, "hi", "greet", 2.0),
                    [SlotSet("order_id", "RG-10421", timestamp=3.0)] + turn(None, "RG-10421", "order_status", 3.0),
                    [ActionExecuted("action_session_start", timestamp=9.0), SessionStarted(timestamp=9.0),
                     SlotSet("order_id", "RG-10421", timestamp=9.0), ActionExecuted("action_listen", timestamp=9.0)],
                    turn(None, "hello again", "greet", 10.0)],
              "b": [turn(None, "no session start", "greet", 5.0), turn(None, "and again", "greet", 6.0)]}
    for sender, steps in script.items():
        for name, store in stores.items():
            tracker = DialogueStateTracker(sender, domain.slots)
            for step in steps:
                loaded = await store.retrieve(sender)
                tracker = loaded or DialogueStateTracker(sender, domain.slots)
                for event in step:
                    tracker.update(event)
                await store.save(tracker)
            await store.save(await store.retrieve(sender))  # nothing new: nothing written
    for sender in ("a", "b", "nobody"):
        latest = {name: await store.retrieve(sender) for name, store in stores.items()}
        full = {name: await store.retrieve_full_tracker(sender) for name, store in stores.items()}
        same_latest = (latest["rasa"] is None and latest["ours"] is None) or \
            latest["rasa"].current_state() == latest["ours"].current_state()
        same_full = (full["rasa"] is None and full["ours"] is None) or \
            full["rasa"].current_state() == full["ours"].current_state()
        count = 0 if latest["ours"] is None else len(latest["ours"].events)
        print(f"{sender}: latest same {same_latest}, full same {same_full}, latest events {count}")
    rows = {name: sqlite3.connect(tmp / f"{name}.db").execute(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id").fetchall()
        for name in stores}
    print("rows identical:", rows["rasa"] == rows["ours"], len(rows["ours"]))

asyncio.run(main())
"""


def test_the_per_turn_queries_read_and_write_exactly_what_rasas_sql_store_does(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    python = Path(os.environ.get("RASA_VENV") or root / ".venv-rasa") / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make setup` (make test does)")
    result = subprocess.run([str(python), "-c", EQUIVALENCE_SCRIPT, str(tmp_path)], cwd=root, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "a: latest same True, full same True, latest events 8" in lines  # the second session only
    assert "b: latest same True, full same True, latest events 8" in lines  # no session start: all
    assert "nobody: latest same True, full same True, latest events 0" in lines
    assert "rows identical: True 28" in lines
