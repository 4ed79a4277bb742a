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

Use it in endpoints.yml with ``type: connectors.sqlite_tracker_store.SQLiteTrackerStore``
and ``db: PATH``. PostgreSQL (DB_HOST set) keeps Rasa's own ``SQL`` store.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

POOL_SIZE = 4
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _tune(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


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
