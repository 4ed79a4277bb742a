"""What every channel does with a user message before and after Rasa handles it.

Before: control characters are removed (PostgreSQL cannot store NUL, and no user means
them), the text is cut to MAX_MESSAGE_CHARS, and each sender may send at most
RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_S seconds: a flood from one sender is turned
away before it reaches the NLU, so the others do not wait behind it.
After: a turn that produced no reply at all (the action server is down or failed, and Rasa
then says nothing) gets ``utter_no_reply``: the user is never left in silence.
Counted (``ridgeline_rasa.metrics``): every turn and its wall time by channel, every message the
rate limit turns away, every ``utter_no_reply``. A click on a verdict button (``ridgeline.feedback``)
is no turn.
Followed (``ridgeline.logs``): each turn gets a request id (the channel's ``X-Request-ID`` when it
gives one, else a new one), bound with the sender to every log line written during the turn and
sent on to the action server (``ridgeline_rasa.request_id``); one INFO line per turn says how it went.

The limits are per Rasa process; their settings are ``ridgeline_rasa.settings.GateSettings``
(MAX_MESSAGE_CHARS, RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW_S in Rasa's environment).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict, deque
from typing import Any, Awaitable, Callable, Deque, Dict, Optional, Text

from typing import TYPE_CHECKING

from ridgeline import feedback, logs
from ridgeline.text import clean_text
from ridgeline_rasa import metrics as conversation_metrics
from ridgeline_rasa import settings
from ridgeline_rasa.settings import GateSettings

if TYPE_CHECKING:  # the gate itself needs neither at run time, so its tests need no Rasa
    from rasa.core.channels.channel import OutputChannel, UserMessage
    from sanic import Blueprint

logger = logging.getLogger(__name__)

OnNewMessage = Callable[["UserMessage"], Awaitable[Any]]

DEFAULT_TEXTS = {
    "utter_no_reply": "Sorry, part of our system isn't responding right now, so I couldn't answer "
                      "that. Please try again in a minute.",
    "utter_slow_down": "You're sending messages faster than I can read them. Please wait a few "
                       "seconds, then send your message again.",
}


class SenderRateLimiter:
    """At most ``limit`` messages per sender in any ``window_s`` seconds (a sliding window).

    Senders idle for a whole window are forgotten, and at most ``max_senders`` are tracked
    (the least recently seen go first), so memory stays bounded under any traffic.
    """

    def __init__(self, limit: int, window_s: float, max_senders: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_senders = max_senders
        self.clock = clock
        self._seen: "OrderedDict[str, Deque[float]]" = OrderedDict()

    def retry_after(self, sender: str) -> Optional[float]:
        """None when ``sender`` may send now (and count it), else seconds until they may."""
        now = self.clock()
        self._forget_idle(now)
        times = self._seen.pop(sender, None) or deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        self._seen[sender] = times
        if len(times) >= self.limit:
            return max(self.window_s - (now - times[0]), 0.001)
        times.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        while self._seen:
            oldest, times = next(iter(self._seen.items()))
            if len(self._seen) < self.max_senders and times and now - times[-1] < self.window_s:
                break
            self._seen.pop(oldest)

    def __len__(self) -> int:
        return len(self._seen)


class CountingOutputChannel:
    """Passes every message on to ``inner`` and counts them (Rasa sends through send_response)."""

    def __init__(self, inner: "OutputChannel") -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> Text:
        return self.inner.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.sent += 1
        await self.inner.send_response(recipient_id, message)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


class MessageGate:
    def __init__(self, limits: GateSettings, clock: Callable[[], float] = time.monotonic,
                 metrics: Optional[conversation_metrics.ConversationMetrics] = None) -> None:
        self.settings = limits
        self.clock = clock
        self._metrics = metrics
        self.limiter = SenderRateLimiter(limits.rate_limit_messages, limits.rate_limit_window_s, clock=clock)
        self._warned: Dict[str, float] = {}
        self._app: Any = None

    def attach(self, blueprint: "Blueprint") -> None:
        """Know the Sanic app of ``blueprint`` once the server starts: its agent has the domain
        with the texts to say. (What the extension installs on that app at start-up is
        ``ridgeline_rasa.install``; each channel asks for it next to this.)"""
        @blueprint.listener("before_server_start")
        async def on_start(app: Any, _loop: Any) -> None:
            self._app = app

    def text(self, response: str) -> str:
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        domain = getattr(agent, "domain", None)
        variants = (getattr(domain, "responses", None) or {}).get(response) or []
        texts = [v["text"] for v in variants if isinstance(v, dict) and v.get("text")]
        return texts[0] if texts else DEFAULT_TEXTS[response]

    def clean(self, text: Optional[Text]) -> Text:
        return clean_text(text or "", self.settings.max_message_chars)

    @property
    def metrics(self) -> conversation_metrics.ConversationMetrics:
        return self._metrics or conversation_metrics.current()

    def retry_after(self, sender: str) -> Optional[float]:
        """None when ``sender`` may send now, else seconds to wait (and the message is counted as rate-limited)."""
        wait_s = self.limiter.retry_after(sender)
        if wait_s is not None:
            self.metrics.count_rate_limited()
        return wait_s

    async def process(self, on_new_message: OnNewMessage, message: UserMessage,
                      request_id: Optional[str] = None) -> str:
        """Let Rasa handle ``message``; if it said nothing at all, say ``utter_no_reply``. One turn, counted
        and logged under ``request_id`` (the channel's ``X-Request-ID``; a new one when None or unusable),
        which it returns."""
        started = self.clock()
        with logs.bound(request_id=logs.request_id_from(request_id), sender_id=str(message.sender_id)) as turn_id:
            message.text = self.clean(message.text)
            counting = CountingOutputChannel(message.output_channel)
            message.output_channel = counting
            try:
                await on_new_message(message)
            except Exception:
                logger.exception("Rasa failed to handle a message from %s", message.sender_id)
            if counting.sent == 0:
                logger.warning("No reply to a message from %s: answering utter_no_reply", message.sender_id)
                self.metrics.count_apology("no_reply")
                await counting.inner.send_response(message.sender_id, {"text": self.text("utter_no_reply")})
            channel = getattr(message, "input_channel", None) or _channel_name(counting.inner)
            duration_s = self.clock() - started
            if feedback.is_feedback_text(message.text):
                # A verdict button's click is no turn: rasa_feedback_total counts it (ridgeline_rasa.metrics).
                logger.info("Verdict on %s: %d message(s) in %.3f s", channel, counting.sent, duration_s)
            else:
                self.metrics.count_turn(channel, duration_s)
                logger.info("Turn on %s: %d message(s) in %.3f s", channel, counting.sent, duration_s)
        return turn_id

    def guard(self, on_new_message: OnNewMessage) -> OnNewMessage:
        """``on_new_message`` with the rate limit and the no-silence rule, for push channels.

        A sender over the limit is told once per window (not once per message) to slow down.
        """
        async def guarded(message: UserMessage) -> None:
            sender = str(message.sender_id)
            wait_s = self.retry_after(sender)
            if wait_s is not None:
                now = self.clock()
                if self._warned.get(sender, 0.0) <= now:
                    self._warned[sender] = now + wait_s
                    await message.output_channel.send_response(sender, {"text": self.text("utter_slow_down")})
                    if len(self._warned) > 10_000:
                        self._warned = {s: t for s, t in self._warned.items() if t > now}
                return
            await self.process(on_new_message, message)

        return guarded


def _channel_name(output: Any) -> Optional[str]:
    try:
        return output.name()
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def shared_gate() -> MessageGate:
    """The process's one gate: every channel shares its limits (ridgeline_rasa.settings)."""
    return MessageGate(settings.current().gate)
