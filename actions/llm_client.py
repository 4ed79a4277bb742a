"""A small async client for any OpenAI-compatible ``/chat/completions`` endpoint.

It speaks only the public chat-completions API, so this project's LLM service,
vLLM or TGI can stand behind ``LLM_BASE_URL``. Every failure becomes an
``LLMError`` subclass; the caller decides what the user sees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from actions.config import ActionServerConfig

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
) -> str:
    """Ask the LLM service for the next assistant message, within ``config.llm_timeout_s``."""
    headers = {"Authorization": f"Bearer {config.llm_api_key}"} if config.llm_api_key else {}
    body = {
        "model": config.llm_model,
        "messages": messages,
        "max_tokens": config.llm_max_tokens,
        "temperature": config.llm_temperature,
    }
    started = time.perf_counter()
    try:
        # One budget for the whole call (httpx's own timeouts are per phase).
        async with asyncio.timeout(config.llm_timeout_s):
            async with httpx.AsyncClient(timeout=config.llm_timeout_s, transport=transport) as client:
                response = await client.post(config.chat_completions_url, json=body, headers=headers)
    except (TimeoutError, httpx.TimeoutException) as error:
        raise LLMTimeout(f"no reply within {config.llm_timeout_s:g} s") from error
    except httpx.HTTPError as error:
        raise LLMUnreachable(f"{config.chat_completions_url}: {error!r}") from error
    if response.status_code != 200:
        raise LLMHTTPError(response.status_code, response.text)
    try:
        payload = response.json()
    except ValueError:
        raise LLMBadResponse("response is not JSON") from None
    reply = extract_reply(payload)
    logger.info("LLM reply in %.2f s (%d chars)", time.perf_counter() - started, len(reply))
    return reply
