"""``action_human_handoff``: tell the user how a person takes over, and flag the conversation."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

logger = logging.getLogger(__name__)

# Operators find these conversations by this slot in the tracker store.
HANDOFF_SLOT = "handoff_requested"


class ActionHumanHandoff(Action):
    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        logger.info("human handoff requested by %s", tracker.sender_id)
        dispatcher.utter_message(response="utter_handoff")
        return [SlotSet(HANDOFF_SLOT, True)]
