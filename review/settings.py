"""Every environment variable the review tool reads, read here once.

- ``RASA_AUTH_TOKEN``: Rasa's HTTP API token. ``--unmasked`` needs ``--token`` equal to it: whoever
  holds it can already read every tracker unmasked through Rasa's API, so it grants nothing new.
- ``REVIEW_RETENTION_DAYS``: the default of ``prune --older-than`` (90).
- ``DB_HOST``, ``DB_PORT``, ``DB_USER``, ``DB_PASSWORD``, ``DB_NAME``: the tracker store as Rasa
  gets it (stack/services.py, the chart): set DB_HOST and the default ``--db`` is that PostgreSQL;
  otherwise it is ``make run``'s SQLite file, var/run/tracker.db. libpq's own ``PG*`` variables
  (``PGSSLMODE``) reach the driver unchanged.
- ``ORDERS_DB_URL``: the store database (the action server's), where ``forget`` also deletes a
  visitor's ``tickets`` and ``feedback`` rows when those tables exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from ridgeline.paths import REPO_ROOT
from ridgeline.settings import ConfigError, env_number

DEFAULT_RETENTION_DAYS = 90
# make run's tracker store (stack/services.py: run_dir / "tracker.db", run_dir default var/run).
DEFAULT_TRACKER_DB = f"sqlite:///{REPO_ROOT / 'var' / 'run' / 'tracker.db'}"
# The action server's default store database (actions/config.py, DEFAULT_ORDERS_DB_URL).
DEFAULT_STORE_DB = f"sqlite:///{REPO_ROOT / 'var' / 'orders.db'}"
# Where exported files are listed (the manifest `forget` reads).
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "review"

VARIABLES = ("RASA_AUTH_TOKEN", "REVIEW_RETENTION_DAYS", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME",
             "ORDERS_DB_URL")


@dataclass(frozen=True)
class Settings:
    rasa_auth_token: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS
    tracker_db: str = DEFAULT_TRACKER_DB
    store_db: str = DEFAULT_STORE_DB
    state_dir: Path = DEFAULT_STATE_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        tracker_db = DEFAULT_TRACKER_DB
        if env.get("DB_HOST"):
            tracker_db = URL.create(
                "postgresql+psycopg", username=env.get("DB_USER") or None, password=env.get("DB_PASSWORD") or None,
                host=env["DB_HOST"], port=env_number(env, "DB_PORT", int, 5432, at_least=1, at_most=65535),
                database=env.get("DB_NAME") or None,
            ).render_as_string(hide_password=False)
        return cls(
            rasa_auth_token=env.get("RASA_AUTH_TOKEN", ""),
            retention_days=env_number(env, "REVIEW_RETENTION_DAYS", int, DEFAULT_RETENTION_DAYS, at_least=1),
            tracker_db=tracker_db,
            store_db=env.get("ORDERS_DB_URL") or DEFAULT_STORE_DB,
        )


def database_url(url: str, setting: str = "--db") -> URL:
    """``url`` as SQLAlchemy's URL; plain ``postgresql://`` and ``postgres://`` get psycopg 3, the
    driver this environment has (SQLAlchemy's default for them is psycopg2)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"{setting} {url!r} is not a database URL; use sqlite:///PATH or "
                          "postgresql://USER:PASSWORD@HOST:PORT/DB.") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed
