"""A handoff that reaches a person: flag the conversation, ask how to reach the visitor, open a ticket.

The Rasa side (rasa_project/domain/handoff.yml, data/rules.yml):

    human_handoff -> action_human_handoff -> handoff_form (asks for handoff_contact) -> action_open_ticket

- ``action_human_handoff`` says a person will take over and flags the conversation
  (``handoff_requested``); a visitor who already gave their email in this conversation (the order
  form's ``email``) is not asked again: the form's slot is filled with it, so the form is done at once.
- ``validate_handoff_form`` accepts an email address (the one email rule, ``ridgeline.shapes``) or a
  decline ("no thanks", "just the ticket": ``DECLINED``); anything else is asked again once, then
  taken as a decline, so nobody is stuck in the form.
- ``action_open_ticket`` writes the ticket (actions/tickets.py), tells the visitor its number and
  when a person answers (the support hours of knowledge/store.yml), then has the team told
  (actions/notify.py) in the background.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import notify, orders_db, tickets
from actions.config import Configured
from ridgeline import knowledge
from ridgeline.shapes import EMAIL

logger = logging.getLogger(__name__)

# Operators find these conversations by this slot in the tracker store.
HANDOFF_SLOT = "handoff_requested"
HANDOFF_ACTION = "action_human_handoff"
FORM = "handoff_form"
CONTACT_SLOT = "handoff_contact"
# The contact slot's value when the visitor would rather not leave an address (domain: from_intent deny).
DECLINED = "declined"
# Where a visitor's email can already be: the order form's slot, and an earlier handoff's.
EMAIL_SLOTS = ("email", CONTACT_SLOT)
# Answers to "how can a person reach you?" that decline, whatever intent NLU gave them.
_DECLINE = re.compile(
    r"^\s*(no|nah|nope)\W*$"
    r"|\b(no,? thanks?|no,? thank you|nope|just (open )?the ticket|(a |the )?ticket only|only the ticket"
    r"|no e-?mail|without (an |my )?e-?mail|rather not|don'?t want to|do not want to|skip( it)?|no contact"
    r"|stay anonymous|not (giving|sharing|share|give)|declined?)\b",
    re.IGNORECASE,
)
_EMAIL_IN_TEXT = re.compile(EMAIL)
# Answers that are neither an email nor a decline: asked again this many times, then taken as a decline.
MAX_UNCLEAR_ANSWERS = 1


def _first(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""


def email_in(text: str) -> str | None:
    """The first email address in ``text``, normalised (``orders_db.normalize_email``)."""
    match = _EMAIL_IN_TEXT.search(text or "")
    return orders_db.normalize_email(match.group(0)) if match else None


def known_email(tracker: Tracker) -> str | None:
    """The visitor's email if they gave one in this conversation: a slot now, or set earlier (the order
    form clears ``email`` after the look-up, but the visitor told it to us)."""
    for name in EMAIL_SLOTS:
        email = orders_db.normalize_email(_first(tracker.get_slot(name)))
        if email:
            return email
    for event in reversed(tracker.events):
        if event.get("event") == "slot" and event.get("name") in EMAIL_SLOTS:
            email = orders_db.normalize_email(_first(event.get("value")))
            if email:
                return email
    return None


def support_hours(facts: knowledge.StoreKnowledge) -> str:
    """When the team answers, from the store facts' ``contact_hours`` answer: its first sentence, without
    "Our support team answers" and the ways to reach it ("Monday to Friday 08:00-18:00 and ... (UK time)")."""
    answer = next(entry.answer for entry in facts.faq if entry.topic == "contact_hours")
    sentence = re.split(r"(?<=[.!?])\s+", answer.strip(), maxsplit=1)[0].rstrip(".")
    sentence = re.sub(r"^.*?\b(?:answers|is available|is open|works)\s+", "", sentence, count=1)
    return re.split(r",\s+(?:by|on|at|via)\s", sentence, maxsplit=1)[0].strip()


def ticket_opened(number: str, contact: str | None, facts: knowledge.StoreKnowledge) -> str:
    store = facts.store
    said = (f"I've opened ticket {number} for you. A person from our team will answer within our support "
            f"hours: {support_hours(facts)}.")
    if contact:
        return f"{said} They will write to you at {contact}."
    return (f"{said} You can also quote {number} when you email {store['support_email']} or call "
            f"{store['support_phone']}.")


def ticket_failed(facts: knowledge.StoreKnowledge) -> str:
    store = facts.store
    return (f"Sorry, I couldn't open a ticket just now. Please email {store['support_email']} or call "
            f"{store['support_phone']}: a person from our team will answer within our support hours: "
            f"{support_hours(facts)}.")


class ActionHumanHandoff(Action):
    def name(self) -> str:
        return HANDOFF_ACTION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        logger.info("human handoff requested by %s", tracker.sender_id)
        dispatcher.utter_message(response="utter_handoff")
        events = [SlotSet(HANDOFF_SLOT, True)]
        email = known_email(tracker)
        if email:  # handoff_form finds its slot filled and asks nothing
            events.append(SlotSet(CONTACT_SLOT, email))
        return events


class ValidateHandoffForm(FormValidationAction):
    def name(self) -> str:
        return f"validate_{FORM}"

    async def validate_handoff_contact(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        value = _first(slot_value).strip()
        text = (tracker.latest_message or {}).get("text") or ""
        email = orders_db.normalize_email(value) or email_in(value) or email_in(text)
        if email:
            return {CONTACT_SLOT: email}
        if value.lower() == DECLINED or _DECLINE.search(value) or _DECLINE.search(text):
            return {CONTACT_SLOT: DECLINED}
        if self._unclear_answers(tracker) > MAX_UNCLEAR_ANSWERS:
            logger.info("no email after %d answers: the ticket is opened without one", MAX_UNCLEAR_ANSWERS + 1)
            return {CONTACT_SLOT: DECLINED}
        dispatcher.utter_message(response="utter_invalid_email")
        return {CONTACT_SLOT: None}

    @staticmethod
    def _unclear_answers(tracker: Tracker) -> int:
        """The visitor's messages since the form started (this one included)."""
        count = 0
        for event in reversed(tracker.events):
            if event.get("event") == "active_loop" and event.get("name") == FORM:
                break
            count += event.get("event") == "user"
        return count


class ActionOpenTicket(Configured, Action):

    def name(self) -> str:
        return "action_open_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        config = self.config
        facts = knowledge.load(config.store_facts_path)
        contact = orders_db.normalize_email(_first(tracker.get_slot(CONTACT_SLOT)))
        new = tickets.NewTicket(
            sender_id=tracker.sender_id,
            channel=tracker.get_latest_input_channel() or "unknown",
            reason=tickets.reason_of(tracker.events, HANDOFF_ACTION) or (tracker.latest_message or {}).get("text", ""),
            contact=contact,
            turns=tickets.last_turns(tracker.events),
        )
        reset = [SlotSet(CONTACT_SLOT, None)]
        try:
            engine = orders_db.cached_engine(config.orders_db_url, config.orders_seed_sample)
            ticket = await asyncio.to_thread(tickets.open_ticket, engine, new)
        except Exception:
            logger.exception("could not open a ticket for %s", tracker.sender_id)
            dispatcher.utter_message(text=ticket_failed(facts))
            return reset
        logger.info("ticket %s opened for %s (%s)", ticket.number, tracker.sender_id, new.channel)
        dispatcher.utter_message(text=ticket_opened(ticket.number, contact, facts))
        notify.schedule(config, notify.TicketNotice(
            number=ticket.number, channel=new.channel, reason=new.reason, contact=contact,
            created=f"{ticket.created_at:%Y-%m-%d %H:%M} UTC"))
        return reset
