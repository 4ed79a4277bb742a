"""ridgeline.feedback: the verdict buttons' payloads, and how a verdict is read back from the tracker."""

from __future__ import annotations

import json

import pytest

from ridgeline import feedback


def click(text: str, intent: str | None = feedback.INTENT, **entities: str) -> dict:
    return {"event": "user", "text": text,
            "parse_data": {"intent": {"name": intent, "confidence": 1.0},
                           "entities": [{"entity": k, "value": v} for k, v in entities.items()]}}


def test_each_reply_gets_a_fresh_id_that_fits_telegrams_callback_data():
    ids = {feedback.new_reply_id() for _ in range(200)}
    assert len(ids) == 200 and all(feedback.is_reply_id(i) for i in ids)
    for button in feedback.buttons(next(iter(ids))):
        assert len(button["payload"].encode()) <= 64  # Telegram's limit on an inline button's data


def test_the_two_buttons_carry_the_verdict_and_the_reply():
    up, down = feedback.buttons("0123456789ab")
    assert up["title"] == "👍 Helpful" and down["title"] == "👎 Not helpful"
    assert up["payload"] == '/feedback{"verdict":"up","reply_id":"0123456789ab"}'
    assert json.loads(down["payload"][len("/feedback"):]) == {"verdict": "down", "reply_id": "0123456789ab"}


@pytest.mark.parametrize("verdict, reply_id", [("meh", "0123456789ab"), ("up", "XYZ"), ("up", "0123456789abc")])
def test_a_malformed_payload_is_refused(verdict, reply_id):
    with pytest.raises(ValueError):
        feedback.payload(verdict, reply_id)


def test_a_click_is_read_back_from_its_user_event():
    event = click('/feedback{"verdict":"down","reply_id":"0123456789ab"}', verdict="down", reply_id="0123456789ab")
    assert feedback.verdict_of(event) == feedback.Verdict("down", "0123456789ab")
    assert feedback.is_feedback_event(event)


@pytest.mark.parametrize("event", [
    click("/feedback", verdict="meh", reply_id="0123456789ab"),          # unknown verdict
    click("/feedback", verdict="up", reply_id="../../etc"),              # not a reply id
    click("/feedback", verdict="up"),                                    # no reply named
    click("that was helpful", intent="thank", verdict="up", reply_id="0123456789ab"),
    {"event": "bot", "text": "x", "metadata": {"reply_id": "0123456789ab"}},
])
def test_what_is_not_a_well_formed_verdict_is_none(event):
    assert feedback.verdict_of(event) is None


def test_clicks_and_their_thanks_are_not_conversation_but_replies_and_typed_text_are():
    assert feedback.is_feedback_event(click('/feedback{"verdict":"up"}', intent="nlu_fallback"))  # by its text
    assert feedback.is_feedback_event({"event": "bot", "text": "Thanks",
                                       "metadata": {"utter_action": feedback.THANKS_RESPONSE}})
    assert not feedback.is_feedback_event(click("thanks, that helped", intent="thank"))
    assert not feedback.is_feedback_event({"event": "user", "text": "/feedbacks are great",
                                           "parse_data": {"intent": {"name": "open_question"}}})
    reply = {"event": "bot", "text": "Pack layers.", "metadata": {"reply_id": "0123456789ab",
                                                                  "sources": ["RO-10003", 7]}}
    assert not feedback.is_feedback_event(reply)
    assert feedback.reply_id_of(reply) == "0123456789ab"
    assert feedback.sources_of(reply) == ["RO-10003"]
    assert feedback.reply_id_of({"event": "bot", "text": "Hi", "metadata": {"utter_action": "utter_greet"}}) is None


def test_the_gate_tells_a_click_from_its_text_alone():
    assert feedback.is_feedback_text('  /feedback{"verdict":"up","reply_id":"0123456789ab"}')
    assert feedback.is_feedback_text("/feedback")
    assert not feedback.is_feedback_text("/feedbackform")
    assert not feedback.is_feedback_text("my feedback: great shop")
    assert not feedback.is_feedback_text(None)
