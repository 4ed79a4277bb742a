"""The OpenAI chat-completions wire format: request validation and response bodies.

``parse_chat_request`` turns a raw request body into a ``ChatCompletionRequest``
or raises ``InvalidRequest`` with a sentence that names the bad field;
``chat_completion_body`` builds the response and ``chunk_body``/``sse`` the
Server-Sent Events of a streamed one. Nothing here touches a model: checks
that need the tokenizer (the prompt's length) live in the engine.

Fields the service does not use (``model``, ``user``, ``frequency_penalty``,
...) are accepted and ignored, so stock OpenAI clients work unchanged.
``ignore_eos`` is vLLM's extension (generate exactly ``max_tokens``; the
benchmark uses it).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from llm.errors import InvalidRequest
from ridgeline.text import lone_surrogate_at

ROLES = ("system", "user", "assistant")
MAX_STOP_SEQUENCES = 4


class FinishReason(str, Enum):
    STOP = "stop"  # end-of-sequence token or a stop string
    LENGTH = "length"  # max_tokens (or the context window) reached


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatCompletionRequest:
    """A validated request. ``None`` sampling values mean "the model's default"."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    ignore_eos: bool = False
    request_id: str = field(default_factory=lambda: new_request_id())


@dataclass(frozen=True)
class Completion:
    """What an engine returns for one request (the last event of a stream)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


@dataclass(frozen=True)
class TextDelta:
    """New text of a streamed completion; ``completion_tokens`` counts the tokens generated so far."""

    text: str
    completion_tokens: int


def new_request_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def parse_json_body(raw: bytes) -> Any:
    if not raw or not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object with a 'messages' list.")
    try:
        return json.loads(raw)
    except ValueError as exc:  # also invalid UTF-8, and an integer of more digits than Python reads
        raise InvalidRequest(f"The request body is not valid JSON ({exc}); send a JSON object.") from None
    except RecursionError:
        raise InvalidRequest("The request body is not valid JSON: it is nested too deeply to read.") from None


def parse_chat_request(
    body: Any, max_tokens_cap: int, default_max_tokens: int, request_id: str | None = None
) -> ChatCompletionRequest:
    """Validate a decoded JSON body against the chat-completions schema."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object with a 'messages' list.")
    messages = _parse_messages(body.get("messages"))

    stream = _optional_bool(body, "stream")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise InvalidRequest("'stream_options' is only allowed with stream=true.", "stream_options")
        if not isinstance(options, dict):
            raise InvalidRequest("'stream_options' must be an object like {\"include_usage\": true}.", "stream_options")
        include_usage = _optional_bool(options, "include_usage", "stream_options.include_usage")
    n = body.get("n", 1)
    if n is not None and (not _is_int(n) or n != 1):
        raise InvalidRequest("'n' must be 1; this service returns one choice per request.", "n")

    # max_completion_tokens is the newer OpenAI name for max_tokens.
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(name)
    if max_tokens is None:
        max_tokens = default_max_tokens
    elif not _is_int(max_tokens) or max_tokens < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer, got {max_tokens!r}.", name)
    elif max_tokens > max_tokens_cap:
        raise InvalidRequest(f"'{name}' is {max_tokens}, above this server's cap of {max_tokens_cap}.", name)

    temperature = _optional_number(body, "temperature", 0.0, 2.0, "between 0 and 2")
    top_p = _optional_number(body, "top_p", 0.0, 1.0, "greater than 0 and at most 1")
    if top_p == 0.0:
        raise InvalidRequest(f"'top_p' must be a number greater than 0 and at most 1, got {body['top_p']!r}.", "top_p")

    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise InvalidRequest(f"'seed' must be an integer, got {seed!r}.", "seed")

    return ChatCompletionRequest(
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=_parse_stop(body.get("stop")),
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        ignore_eos=_optional_bool(body, "ignore_eos"),
        request_id=request_id or new_request_id(),
    )


def _optional_bool(body: dict, name: str, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{param or name}' must be true or false, got {value!r}.", param or name)
    return value


def _parse_messages(raw: Any) -> tuple[ChatMessage, ...]:
    if raw is None:
        raise InvalidRequest("'messages' is missing; send a non-empty list of {role, content} objects.", "messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty list of {role, content} objects.", "messages")
    messages = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{where}' must be an object with 'role' and 'content'.", where)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"'{where}.role' must be one of {', '.join(ROLES)}, got {role!r}.", f"{where}.role"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidRequest(
                f"'{where}.content' must be a string, got {type(content).__name__}.", f"{where}.content"
            )
        _check_unicode(content, f"{where}.content")
        messages.append(ChatMessage(role=role, content=content))
    return tuple(messages)


def _parse_stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(stops, list)
        or not all(isinstance(s, str) and s for s in stops)
        or len(stops) > MAX_STOP_SEQUENCES
    ):
        raise InvalidRequest(
            f"'stop' must be a non-empty string or a list of at most {MAX_STOP_SEQUENCES} non-empty strings.",
            "stop",
        )
    for stop in stops:
        _check_unicode(stop, "stop")
    return tuple(stops)


def _check_unicode(text: str, param: str) -> None:
    """A JSON string may hold a lone surrogate (``"\\ud800"``), which no tokenizer can encode."""
    at = lone_surrogate_at(text)
    if at is not None:
        raise InvalidRequest(
            f"'{param}' holds a lone surrogate (\\u{ord(text[at]):04x}), which is not Unicode text.", param
        )


def _optional_number(body: dict, name: str, low: float, high: float, bounds: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a number {bounds}, got {value!r}.", name)
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chat_completion_body(
    request: ChatCompletionRequest, completion: Completion, model_name: str, created: int | None = None
) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` response for one finished request."""
    return {
        "id": request.request_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": completion.finish_reason.value,
                "logprobs": None,
            }
        ],
        "usage": _usage(completion.prompt_tokens, completion.completion_tokens),
    }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chunk_body(
    request: ChatCompletionRequest,
    model_name: str,
    created: int,
    delta: dict[str, str] | None = None,
    finish_reason: FinishReason | None = None,
    usage: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream.

    The first carries ``{"role": "assistant"}``, the middle ones ``{"content": ...}``, the
    last one an empty delta and the finish reason; with ``usage`` (``include_usage``) a
    final chunk has no choices and the token counts, as OpenAI sends it.
    """
    body: dict[str, Any] = {
        "id": request.request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model_name,
        "choices": [],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
        return body
    body["choices"] = [
        {
            "index": 0,
            "delta": delta or {},
            "finish_reason": finish_reason.value if finish_reason else None,
            "logprobs": None,
        }
    ]
    if request.include_usage:
        body["usage"] = None
    return body


def sse(payload: dict[str, Any] | str) -> str:
    """One Server-Sent Event: ``data: <json>`` (or the literal ``[DONE]``) and a blank line."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n"


STREAM_DONE = "[DONE]"


def models_body(model_name: str, created: int) -> dict[str, Any]:
    """The OpenAI ``GET /v1/models`` list with the one served model."""
    return {
        "object": "list",
        "data": [{"id": model_name, "object": "model", "created": created, "owned_by": "llm-service"}],
    }
