"""The system prompt an engine computes at start-up and shares with every request that starts with it.

``--warm-prompt`` (``LLM_WARM_PROMPT``):

- ``auto``: the action server's own system prompt (persona, rules and the
  store's facts from ``knowledge/store.yml``, rendered by the ground floor's
  ``ridgeline.knowledge``, which both services import), when that file is
  here (the images copy ``knowledge/``; a store file elsewhere: pass it as FILE); otherwise none;
- ``none``: no warm prompt;
- a path: the file's text is the system message.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

AUTO = "auto"
NONE = "none"


def warm_system_prompt(setting: str) -> str | None:
    if setting == NONE:
        return None
    if setting == AUTO:
        from ridgeline.knowledge import load

        try:
            return load().system_prompt()
        except Exception as exc:  # noqa: BLE001 (a missing or broken store file only costs the warm-up)
            logger.warning("No warm prompt: the action server's system prompt could not be built (%s)", exc)
            return None
    return Path(setting).read_text()
