"""Rasa's SQL tracker store on a local SQLite file, tuned for one Rasa process (`make run`).

Rasa's ``SQLTrackerStore`` opens a new SQLite connection for every session (SQLAlchemy 1.4's
``NullPool`` for files) and, in SQLite's default rollback-journal mode, waits for the disk
(fsync) at every commit: one or two commits a turn, 20-30 ms each on the development
machine's disk. This store keeps Rasa's schema and queries and changes only how SQLite
writes:

* ``journal_mode=WAL``: a commit appends to the write-ahead log, readers never wait for it;
* ``synchronous=NORMAL``: the log is synced at checkpoints, not at every commit. A crash of
  Rasa loses nothing; a power cut may lose the last turns, and never corrupts the file;
* connections are kept open (a small pool): closing the last connection of a WAL database
  checkpoints and syncs it, which would bring the wait back at every turn.

It also runs Rasa's three per-turn queries (the latest session's events, their count, the new
rows) as SQL statements written once, on the pooled SQLite connection: through SQLAlchemy's ORM
they cost more to build than to run (a tenth of a scripted turn). Same rows, same order, same
session rule as Rasa's ``SQLTrackerStore`` (events since the latest ``session_started``, or all
when there is none); other queries (``keys``, the full tracker) stay Rasa's.

Use it in endpoints.yml with ``type: ridgeline_rasa.tracker_store.SQLiteTrackerStore``
and ``db: PATH``. PostgreSQL (DB_HOST set) keeps Rasa's own ``SQL`` store.
"""

from __future__ import annotations

import itertools
import json
from contextlib import closing
from typing import Any, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

POOL_SIZE = 4
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _tune(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


# Rasa's `_event_query`: this sender's events since its latest session start, in id order.
LATEST_SESSION = (
    "FROM events WHERE sender_id = :sender AND (timestamp >= (SELECT max(timestamp) FROM events "
    "WHERE sender_id = :sender AND type_name = :session_started) OR (SELECT max(timestamp) FROM events "
    "WHERE sender_id = :sender AND type_name = :session_started) IS NULL)"
)
SELECT_LATEST_SESSION = f"SELECT data {LATEST_SESSION} ORDER BY id"
COUNT_LATEST_SESSION = f"SELECT count(*) {LATEST_SESSION}"
INSERT_EVENT = ("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                "VALUES (?, ?, ?, ?, ?, ?)")


class SQLiteTrackerStore(SQLTrackerStore):
    def __init__(self, domain: Any = None, db: str = "rasa.db", **kwargs: Any) -> None:
        kwargs.pop("dialect", None)
        kwargs.pop("host", None)  # Rasa passes the endpoint's url as host; a file needs none
        super().__init__(domain=domain, dialect="sqlite", db=db, **kwargs)  # creates the tables
        url = self.engine.url
        self.engine.dispose()
        # Rasa uses the store from its event loop; the pool may hand a connection to another thread.
        self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=POOL_SIZE,
                                       connect_args={"check_same_thread": False})
        sa.event.listen(self.engine, "connect", _tune)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    def _query(self, sql: str, sender_id: str) -> List[Tuple[Any, ...]]:
        with closing(self.engine.raw_connection()) as connection:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, {"sender": sender_id, "session_started": SessionStarted.type_name})
                return cursor.fetchall()
            finally:
                cursor.close()

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool
                        ) -> Optional[DialogueStateTracker]:
        if fetch_events_from_all_sessions:
            return await super()._retrieve(sender_id, fetch_events_from_all_sessions)
        events = [json.loads(data) for (data,) in self._query(SELECT_LATEST_SESSION, sender_id)]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with closing(self.engine.raw_connection()) as connection:
            cursor = connection.cursor()
            try:
                cursor.execute(COUNT_LATEST_SESSION,
                               {"sender": tracker.sender_id, "session_started": SessionStarted.type_name})
                (stored,) = cursor.fetchone()
                rows = [_row(tracker.sender_id, event) for event in
                        itertools.islice(tracker.events, stored, len(tracker.events))]
                if rows:
                    cursor.executemany(INSERT_EVENT, rows)
                connection.commit()
            finally:
                cursor.close()


def _row(sender_id: str, event: Any) -> Sequence[Any]:
    data = event.as_dict()
    intent = data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY)
    return (sender_id, event.type_name, data.get("timestamp"), intent, data.get("name"), json.dumps(data))
