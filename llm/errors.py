"""Typed errors of the LLM service, and the one place that turns them into HTTP.

Every error a client can cause or see is an ``LLMServiceError`` subclass with
an HTTP status, an OpenAI error ``type`` and a machine-readable ``code``.
``error_response`` maps any exception (ours, Sanic's, or an unexpected one)
to a status and an OpenAI-style body::

    {"error": {"message": "...", "type": "invalid_request_error",
               "code": "invalid_request", "param": "messages"}}

Start-up errors (``ConfigError``, ``ModelLoadError``) are not HTTP errors:
``python -m llm serve`` prints their message and exits with code 2.
"""

from __future__ import annotations

import logging
from typing import Any

from ridgeline.settings import ConfigError  # noqa: F401 (re-exported: the service's start-up error)

logger = logging.getLogger(__name__)


class LLMServiceError(Exception):
    """An error with a message meant for the client and an HTTP status."""

    status: int = 500
    error_type: str = "internal_error"
    code: str = "internal_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(LLMServiceError):
    """The request body is malformed or a parameter is out of range."""

    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    """The prompt does not fit the model's context window."""

    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(
            f"The prompt is {prompt_tokens} tokens long but the model's context is "
            f"{context_length} tokens; shorten the messages.",
            param="messages",
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class ModelNotReady(LLMServiceError):
    """The model is still loading or warming up."""

    status = 503
    error_type = "service_unavailable"
    code = "model_not_ready"

    def __init__(self, message: str = "The model is still loading; retry in a few seconds.") -> None:
        super().__init__(message)


class StartUpFailed(ModelNotReady):
    """Loading or the warm-up generation failed: the service stays up, not ready, and says why."""

    code = "start_up_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The model failed to start ({reason}); the service will not become ready. "
            "The details are in its log; fix the cause and restart it."
        )
        self.reason = reason


class ShuttingDown(LLMServiceError):
    """The server stopped while the request was generating."""

    status = 503
    error_type = "service_unavailable"
    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("The server is shutting down; retry the request.")


class QueueFull(LLMServiceError):
    """Every batch slot is busy and the waiting queue is at its limit."""

    status = 429
    error_type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, waiting: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"The server is at capacity ({waiting} requests already waiting for a batch slot); "
            f"retry after {retry_after_s} s."
        )
        self.retry_after_s = retry_after_s


class DeadlineExceeded(LLMServiceError):
    """The request did not finish within the server's per-request deadline."""

    status = 504
    error_type = "timeout_error"
    code = "deadline_exceeded"

    def __init__(self, timeout_s: float, where: str) -> None:
        super().__init__(
            f"The request did not finish within the server's deadline of {timeout_s:g} s (it {where}); "
            "ask for fewer max_tokens or retry when the server is less busy."
        )


class Unauthorized(LLMServiceError):
    """The service has an API key and the request did not carry it."""

    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"

    def __init__(self) -> None:
        super().__init__(
            "This server needs an API key: send the header 'Authorization: Bearer <LLM_API_KEY>'."
        )


class ModelLoadError(Exception):
    """The model could not be loaded; the message says what failed and how to fix it."""


def retry_after_s(exc: BaseException) -> int | None:
    """Seconds a client should wait before retrying, for errors that deserve a ``Retry-After`` header."""
    if isinstance(exc, QueueFull):
        return exc.retry_after_s
    if isinstance(exc, (ModelNotReady, ShuttingDown)):
        return 5
    return None


CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away before the answer"

# Sanic raises its own exceptions for routing and transport errors; these are
# the OpenAI error types we report for their statuses.
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}
_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    499: "client_closed_request",
    413: "payload_too_large",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_body(message: str, error_type: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


def error_response(exc: BaseException, request_path: str = "") -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for any exception raised while serving."""
    if isinstance(exc, LLMServiceError):
        return exc.status, error_body(exc.message, exc.error_type, exc.code, exc.param)

    from sanic.exceptions import NotFound, RequestCancelled, SanicException

    if isinstance(exc, RequestCancelled):  # the client went away: nobody reads this body
        return CLIENT_CLOSED_REQUEST, error_body(
            "The client closed the connection before the response.", "client_closed_request", "client_closed_request"
        )
    if isinstance(exc, NotFound):
        message = f"No route for {request_path or 'this path'}; see GET /v1/models, POST /v1/chat/completions."
        return 404, error_body(message, "not_found_error", "not_found")
    if isinstance(exc, SanicException):
        status = int(getattr(exc, "status_code", 500) or 500)
        if status < 500:
            message = str(exc) or "The request could not be processed."
            error_type = _TYPE_BY_STATUS.get(status, "invalid_request_error")
            return status, error_body(message, error_type, _CODE_BY_STATUS.get(status, "client_error"))
        if status == 503:
            return 503, error_body(str(exc), "service_unavailable", "service_unavailable")

    logger.error("Unhandled error serving %s", request_path or "a request", exc_info=exc)
    return 500, error_body(
        "The server hit an internal error; the details are in its log.", "internal_error", "internal_error"
    )
