"""Retention (``prune``) and erasure (``forget``): what is deleted, in what transactions, and the counts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from review.files import Manifest
from review.store import TrackerDB, delete_visitor_rows

logger = logging.getLogger(__name__)

DAY_S = 86_400
DEFAULT_BATCH = 100


@dataclass(frozen=True)
class Pruned:
    conversations: int
    events: int
    cutoff: float
    dry_run: bool


def prune(db: TrackerDB, older_than_days: float, batch: int = DEFAULT_BATCH, dry_run: bool = False,
          now: float | None = None) -> Pruned:
    """Delete the conversations whose last event is older than ``older_than_days``.

    ``batch`` senders per transaction: each holds SQLite's write lock (or PostgreSQL's row locks)
    for a moment only, so Rasa keeps answering while a large prune runs.
    """
    cutoff = (time.time() if now is None else now) - older_than_days * DAY_S
    stale = db.stale_senders(cutoff)
    if dry_run:
        return Pruned(len(stale), db.count_events(stale), cutoff, True)
    conversations = events = 0
    for start in range(0, len(stale), batch):
        removed_conversations, removed_events = db.delete_stale(stale[start:start + batch], cutoff)
        conversations += removed_conversations
        events += removed_events
        logger.debug("pruned %d conversations so far", conversations)
    return Pruned(conversations, events, cutoff, False)


@dataclass
class Forgotten:
    events: int = 0
    store_rows: dict[str, int] = field(default_factory=dict)
    files_deleted: int = 0
    files_rewritten: int = 0


def forget(db: TrackerDB, sender: str, store_db: str, state_dir: Path) -> Forgotten:
    """Everything held about one visitor: tracker events, store rows, files this tool wrote."""
    result = Forgotten(events=db.delete_sender(sender))
    result.store_rows = delete_visitor_rows(store_db, sender)
    result.files_deleted, result.files_rewritten = Manifest(state_dir).forget(sender)
    return result
