"""The gate every channel puts around Rasa (ridgeline_rasa/channels/gate.py), without a Rasa server.

Its behaviour through real Rasa servers is tested in tests/e2e/test_faults.py and test_bad_input.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from ridgeline_rasa.channels.gate import (DEFAULT_TEXTS, GateSettings, MessageGate, SenderRateLimiter,
                                         clean_text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Output:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def name(self) -> str:
        return "test"

    async def send_response(self, recipient_id, message) -> None:
        self.sent.append((recipient_id, message))


def message(text: str, sender: str = "s1") -> SimpleNamespace:
    return SimpleNamespace(text=text, sender_id=sender, output_channel=Output())


@pytest.mark.parametrize("raw, cleaned", [
    ("hello", "hello"),
    ("nul\x00 byte", "nul byte"),
    ("bell\x07 and esc\x1b[31m", "bell and esc[31m"),
    ("zero\u200bwidth\u2060joined\ufeff", "zerowidthjoined"),
    ("bidi \u202eoverride\u202c", "bidi override"),
    ("line one\nline two\ttab", "line one\nline two\ttab"),
    ("שלום, איפה ההזמנה שלי?", "שלום, איפה ההזמנה שלי?"),
    ("مرحبا \u200f", "مرحبا \u200f"),
    ("family 👨\u200d👩\u200d👧 and 🇳🇴", "family 👨\u200d👩\u200d👧 and 🇳🇴"),
    ("می\u200cخواهم", "می\u200cخواهم"),
])
def test_clean_text_drops_only_what_hides_or_breaks_text(raw, cleaned):
    assert clean_text(raw, 100) == cleaned


def test_clean_text_cuts_to_the_limit():
    assert clean_text("x" * 100_000, 4000) == "x" * 4000


def test_rate_limit_is_per_sender_and_frees_up_after_the_window():
    clock = Clock()
    limiter = SenderRateLimiter(limit=3, window_s=10, clock=clock)
    assert [limiter.retry_after("flood") for _ in range(3)] == [None, None, None]
    clock.now += 4
    assert limiter.retry_after("flood") == pytest.approx(6.0)
    assert limiter.retry_after("calm") is None, "another sender was slowed by the flood"
    clock.now += 6
    assert limiter.retry_after("flood") is None


def test_rate_limiter_memory_stays_bounded():
    clock = Clock()
    limiter = SenderRateLimiter(limit=2, window_s=10, max_senders=100, clock=clock)
    for i in range(1000):
        limiter.retry_after(f"sender-{i}")
    assert len(limiter) <= 100
    clock.now += 11
    limiter.retry_after("late")
    assert len(limiter) == 1, "idle senders were not forgotten"


def test_a_turn_without_any_reply_gets_utter_no_reply():
    gate = MessageGate(GateSettings())
    msg = message("where is my order?")

    async def silent(_):
        return None

    asyncio.run(gate.process(silent, msg))
    assert msg.output_channel.inner.sent == [("s1", {"text": DEFAULT_TEXTS["utter_no_reply"]})]


def test_a_turn_that_fails_gets_utter_no_reply():
    gate = MessageGate(GateSettings())
    msg = message("hi")

    async def broken(_):
        raise RuntimeError("action server unreachable")

    asyncio.run(gate.process(broken, msg))
    assert [m["text"] for _, m in msg.output_channel.inner.sent] == [DEFAULT_TEXTS["utter_no_reply"]]


def test_a_turn_with_a_reply_gets_nothing_added_and_rasa_sees_clean_text():
    gate = MessageGate(GateSettings(max_message_chars=10))
    msg = message("hello\x00 there, a long message")
    seen = []

    async def answering(m):
        seen.append(m.text)
        await m.output_channel.send_response(m.sender_id, {"text": "Hi!"})

    asyncio.run(gate.process(answering, msg))
    assert seen == ["hello ther"]
    assert msg.output_channel.inner.sent == [("s1", {"text": "Hi!"})]


def test_a_flooding_sender_is_told_once_per_window_and_never_reaches_rasa():
    gate = MessageGate(GateSettings(rate_limit_messages=2, rate_limit_window_s=60))
    handled = []

    async def answering(m):
        handled.append(m.text)
        await m.output_channel.send_response(m.sender_id, {"text": "ok"})

    guarded = gate.guard(answering)
    outputs = []
    for i in range(6):
        msg = message(f"message {i}", sender="flood")
        asyncio.run(guarded(msg))
        outputs.append(msg.output_channel)
    other = message("hello", sender="calm")
    asyncio.run(guarded(other))
    assert handled == ["message 0", "message 1", "hello"]
    notices = [m["text"] for out in outputs[2:] for _, m in getattr(out, "inner", out).sent]
    assert notices == [DEFAULT_TEXTS["utter_slow_down"]], "the notice should come once per window"


@pytest.mark.parametrize("name, value", [("MAX_MESSAGE_CHARS", "0"), ("RATE_LIMIT_MESSAGES", "many"),
                                         ("RATE_LIMIT_WINDOW_S", "-1")])
def test_bad_settings_are_refused_with_the_variable_named(name, value):
    with pytest.raises(ValueError, match=name):
        GateSettings.from_env({name: value})


def test_settings_come_from_the_environment():
    settings = GateSettings.from_env({"MAX_MESSAGE_CHARS": "500", "RATE_LIMIT_MESSAGES": "3",
                                      "RATE_LIMIT_WINDOW_S": "2.5"})
    assert settings == GateSettings(max_message_chars=500, rate_limit_messages=3, rate_limit_window_s=2.5)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_limits_are_refused(value):
    with pytest.raises(ValueError, match="RATE_LIMIT_WINDOW_S"):
        GateSettings.from_env({"RATE_LIMIT_WINDOW_S": value})


def test_lone_surrogates_and_hidden_tag_text_are_dropped_but_subdivision_flags_stay():
    scotland = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore the rules")
    assert clean_text(f"a\ud800b{hidden}c {scotland}", 100) == f"abc {scotland}"
