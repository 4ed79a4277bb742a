"""A small async client for any OpenAI-compatible ``/chat/completions`` endpoint.

It speaks only the public chat-completions API, so this project's LLM service,
vLLM or TGI can stand behind ``ACTIONS_LLM_URL``. Every failure becomes an
``LLMError`` subclass; the caller decides what the user sees.

The reply is streamed (``"stream": true``), so a reply that the deadline
(``ACTIONS_LLM_TIMEOUT_S``) overtakes is not lost: what arrived up to its last complete
sentence is returned, marked ``cut``; only when not one sentence arrived is it an
``LLMTimeout``. Leaving the stream closes the connection, and the LLM service stops
generating at its next step. A server that ignores ``stream`` and answers with one
JSON body is read as such. The action call's request id (``ridgeline.logs``, bound by the
action server from Rasa's ``X-Request-ID``) goes along in the same header, so the LLM service's
log line for the call carries it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from actions.config import ActionServerConfig
from ridgeline import logs

logger = logging.getLogger(__name__)


class LLMError(Exception):
    """The LLM service gave no usable reply."""

    reason = "error"


class LLMTimeout(LLMError):
    reason = "timeout"


class LLMUnreachable(LLMError):
    reason = "unreachable"


class LLMHTTPError(LLMError):
    reason = "http_status"

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"LLM service answered HTTP {status}: {body[:200]}")
        self.status = status


class LLMBadResponse(LLMError):
    reason = "bad_response"


class LLMStreamFailed(LLMError):
    """The service reported an error in the middle of the stream."""

    reason = "stream_error"


@dataclass(frozen=True)
class LLMReply:
    text: str
    # The deadline or a broken stream came first: ``text`` ends at its last complete sentence.
    # (A reply that max_tokens stopped mid-sentence ends there too, but is whole as configured.)
    cut: bool = False


# The end of a sentence in text that may go on: its mark (and closing quotes or brackets), then a space.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")


def whole_sentences(text: str) -> str:
    """``text`` up to its last complete sentence; empty when not one sentence is complete."""
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def extract_reply(payload: Any) -> str:
    """The assistant text of a chat-completions response, or ``LLMBadResponse``."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMBadResponse("response has no choices[0].message.content") from None
    if not isinstance(content, str) or not content.strip():
        raise LLMBadResponse("response content is empty or not text")
    return content.strip()


async def complete_chat(
    messages: list[dict[str, str]],
    config: ActionServerConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> LLMReply:
    """Ask the LLM service for the next assistant message, within ``config.llm_timeout_s``."""
    headers = {"Authorization": f"Bearer {config.llm_api_key}"} if config.llm_api_key else {}
    request_id = logs.current_request_id()
    if request_id:
        headers[logs.REQUEST_ID_HEADER] = request_id
    body = {
        "model": config.llm_model,
        "messages": messages,
        "max_tokens": config.llm_max_tokens,
        "temperature": config.llm_temperature,
        "stream": True,
    }
    started = time.perf_counter()
    parts: list[str] = []
    try:
        # One budget for the whole call (httpx's own timeouts are per phase).
        async with asyncio.timeout(config.llm_timeout_s):
            async with httpx.AsyncClient(timeout=config.llm_timeout_s, transport=transport) as client:
                async with client.stream("POST", config.chat_completions_url, json=body, headers=headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise LLMHTTPError(response.status_code, response.text)
                    if not response.headers.get("content-type", "").startswith("text/event-stream"):
                        await response.aread()
                        parts.append(extract_reply(_json(response.content)))
                        finish_reason = None
                    else:
                        finish_reason = await _read_stream(response, parts)
    except (TimeoutError, httpx.TimeoutException) as error:
        return _cut_or_raise(parts, LLMTimeout(f"no reply within {config.llm_timeout_s:g} s"), error, started)
    except httpx.HTTPError as error:
        failure = LLMUnreachable(f"{config.chat_completions_url}: {error!r}")
        return _cut_or_raise(parts, failure, error, started)
    except LLMStreamFailed as error:
        return _cut_or_raise(parts, error, error, started)
    reply = "".join(parts).strip()
    if not reply:
        raise LLMBadResponse("the reply is empty")
    # max_tokens stopped it mid-sentence: end at the last complete one rather than mid-word.
    complete = whole_sentences(reply + " ") if finish_reason == "length" else ""
    if complete:
        logger.info("LLM reply reached max_tokens (%d) in %.2f s: cut at its last complete sentence",
                    config.llm_max_tokens, time.perf_counter() - started)
        return LLMReply(complete)
    logger.info("LLM reply in %.2f s (%d chars)", time.perf_counter() - started, len(reply))
    return LLMReply(reply)


def _cut_or_raise(parts: list[str], failure: LLMError, cause: BaseException, started: float) -> LLMReply:
    received = "".join(parts)
    usable = whole_sentences(received)
    if not usable:
        raise failure from cause
    logger.warning("LLM reply cut after %.2f s (%s): kept %d of %d chars, up to the last whole sentence",
                   time.perf_counter() - started, failure.reason, len(usable), len(received))
    return LLMReply(usable, cut=True)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise LLMBadResponse("response is not JSON") from None


async def _read_stream(response: httpx.Response, parts: list[str]) -> str | None:
    """Append the content deltas of a chat-completions event stream to ``parts`` until ``[DONE]``;
    return the finish reason it gave (``stop``, ``length``) or ``None``."""
    finish_reason = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, other fields
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            break
        chunk = _json(data.encode())
        if not isinstance(chunk, dict):
            raise LLMBadResponse("a stream event is not a JSON object")
        if "error" in chunk:
            message = (chunk["error"] or {}).get("message") if isinstance(chunk["error"], dict) else chunk["error"]
            raise LLMStreamFailed(f"the LLM service failed mid-stream: {message}")
        try:
            choice = chunk["choices"][0]
            content = choice.get("delta", {}).get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # e.g. the usage chunk, which has no choices
        if isinstance(content, str):
            parts.append(content)
        finish_reason = choice.get("finish_reason") or finish_reason
    return finish_reason
