"""The order-status form: validate what the customer typed, then look the order up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import orders_db
from actions.config import Configured

logger = logging.getLogger(__name__)


def _first(value: Any) -> str:
    """Entities can fill a slot with a list when the user typed two; take the first."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"

    async def validate_order_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        order_id = orders_db.normalize_order_id(_first(slot_value))
        if order_id is None:
            dispatcher.utter_message(response="utter_invalid_order_id")
        return {"order_id": order_id}

    async def validate_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        email = orders_db.normalize_email(_first(slot_value))
        if email is None:
            dispatcher.utter_message(response="utter_invalid_email")
        return {"email": email}


class ActionCheckOrderStatus(Configured, Action):

    def name(self) -> str:
        return "action_check_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        config = self.config
        order_id = orders_db.normalize_order_id(_first(tracker.get_slot("order_id")))
        email = orders_db.normalize_email(_first(tracker.get_slot("email")))
        # Clear the slots either way so the next question about an order starts afresh.
        reset = [SlotSet("order_id", None), SlotSet("email", None)]
        if order_id is None or email is None:
            dispatcher.utter_message(response="utter_invalid_order_id" if order_id is None else "utter_invalid_email")
            return reset
        try:
            engine = orders_db.cached_engine(config.orders_db_url, config.orders_seed_sample)
            order = await asyncio.to_thread(orders_db.find_order, engine, order_id)
        except Exception:
            logger.exception("order look-up failed")
            dispatcher.utter_message(
                text="Sorry, I can't reach our order system right now. Please try again in a few "
                "minutes, or email help@ridgeline-outfitters.example with your order number."
            )
            return reset
        if order is None:
            dispatcher.utter_message(
                text=f"I couldn't find an order {order_id}. Order numbers look like RG-10421 "
                "and are in your confirmation email; please check it and ask me again."
            )
        elif order.email.lower() != email:
            dispatcher.utter_message(
                text=f"The email address you gave doesn't match the one on order {order_id}, so I "
                "can't share its details. Please use the email address you ordered with."
            )
        else:
            dispatcher.utter_message(text=orders_db.describe(order))
        return reset
