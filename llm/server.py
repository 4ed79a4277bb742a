"""HTTP transport of the LLM service: the Sanic app factory and ``run``.

Endpoints (OpenAI-compatible where OpenAI has one):

    POST /v1/chat/completions   a chat completion; with "stream": true, Server-Sent Events
    GET  /v1/models             the one served model
    GET  /health                the process is alive: always 200
    GET  /ready                 200 once the model is loaded and warmed up; 503 before, after a
                                failed start (the reason is in the body) and while draining
    GET  /metrics               Prometheus exposition

With ``LLM_API_KEY`` set, ``/v1/*`` needs ``Authorization: Bearer <key>`` (401
otherwise); ``/health``, ``/ready`` and ``/metrics`` stay open so probes and
Prometheus need no secret (the metrics hold counts, never content; keep the
port on the cluster network). A client that disconnects cancels its request:
Sanic cancels the handler, and the handler cancels the generation, which frees
its batch slot at the next step. A client's ``X-Request-ID`` (the action server sends the turn's,
``ridgeline.logs``) names the completion (``chatcmpl-<id>``) and is bound to the request's log lines.

This module parses nothing itself (``protocol``), generates nothing itself
(``engine``) and formats errors in exactly one handler (``errors``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from sanic import Request, Sanic
from sanic.exceptions import RequestCancelled
from sanic.response import HTTPResponse, json, raw

from llm.config import ServiceConfig
from llm.engine.base import Engine, RequestHandle, collect
from llm.engine.lifecycle import EngineState
from llm.errors import (
    CLIENT_CLOSED_REQUEST,
    LLMServiceError,
    Unauthorized,
    error_body,
    error_response,
    retry_after_s,
)
from llm.metrics import ServiceMetrics
from llm.protocol import (
    STREAM_DONE,
    ChatCompletionRequest,
    Completion,
    chat_completion_body,
    chunk_body,
    models_body,
    new_request_id,
    parse_chat_request,
    parse_json_body,
    sse,
)
from ridgeline import logs
from ridgeline.access import bearer_matches

logger = logging.getLogger(__name__)

COMPLETIONS_ROUTE = "/v1/chat/completions"
OPEN_PATHS = ("/health", "/ready", "/metrics")
MAX_BODY_BYTES = 1024 * 1024
# Sanic's own ceiling on a handler; the per-request deadline (--request-timeout-s) is the real limit.
RESPONSE_TIMEOUT_S = 3600
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(
    config: ServiceConfig, engine: Engine, metrics: ServiceMetrics | None = None, name: str = "llm"
) -> Sanic:
    """Build the app around an engine (loaded or not); nothing runs until the server starts."""
    app = Sanic(name, configure_logging=False)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.RESPONSE_TIMEOUT = RESPONSE_TIMEOUT_S
    app.config.MOTD = False
    app.ctx.config = config
    app.ctx.engine = engine
    app.ctx.metrics = metrics = metrics or ServiceMetrics()
    app.ctx.created = int(time.time())
    engine.attach_metrics(metrics)
    api_key = config.api_key.encode()

    @app.post(COMPLETIONS_ROUTE)
    async def chat_completions(request: Request) -> HTTPResponse | None:
        not_ready = engine.not_ready_error()
        if not_ready is not None:
            raise not_ready
        chat_request = parse_chat_request(
            parse_json_body(request.body),
            max_tokens_cap=config.max_new_tokens_cap,
            default_max_tokens=config.default_max_tokens,
            request_id=request.ctx.request_id,
        )
        metrics.requests_in_progress.inc()
        try:
            handle = engine.submit(chat_request)
            if chat_request.stream:
                await _stream(request, chat_request, handle)
                return None
            completion = await collect(handle)
        except asyncio.CancelledError:
            if not request.ctx.streaming:  # a stream records itself
                _record(request, CLIENT_CLOSED_REQUEST)
            raise
        finally:
            metrics.requests_in_progress.dec()
        request.ctx.completion = completion
        metrics.observe_completion(
            completion.prompt_tokens, completion.completion_tokens, completion.finish_reason.value
        )
        return json(chat_completion_body(chat_request, completion, engine.model_name))

    async def _stream(request: Request, chat_request: ChatCompletionRequest, handle: RequestHandle) -> None:
        """Send the completion as SSE chunks; errors after the first byte become an error event."""
        request.ctx.streaming = True
        status, completion = 200, None
        created = int(time.time())
        try:
            response = await request.respond(
                content_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Request-ID": chat_request.request_id},
            )
            role = {"role": "assistant", "content": ""}
            await response.send(sse(chunk_body(chat_request, engine.model_name, created, delta=role)))
            try:
                async for event in handle:
                    if isinstance(event, Completion):
                        completion = event
                        break
                    delta = {"content": event.text}
                    await response.send(sse(chunk_body(chat_request, engine.model_name, created, delta=delta)))
            except LLMServiceError as exc:
                status, body = exc.status, error_body(exc.message, exc.error_type, exc.code, exc.param)
                await response.send(sse(body))
            except Exception as exc:  # noqa: BLE001 (a bug: the generic 500 body, details in the log)
                status, body = error_response(exc, request.path)
                await response.send(sse(body))
            if completion is not None:
                end = chunk_body(chat_request, engine.model_name, created, finish_reason=completion.finish_reason)
                await response.send(sse(end))
                if chat_request.include_usage:
                    usage = (completion.prompt_tokens, completion.completion_tokens)
                    await response.send(sse(chunk_body(chat_request, engine.model_name, created, usage=usage)))
                metrics.observe_completion(
                    completion.prompt_tokens, completion.completion_tokens, completion.finish_reason.value
                )
            await response.send(sse(STREAM_DONE))
            await response.eof()
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            handle.cancel()
            request.ctx.completion = completion
            _record(request, status)

    @app.get("/v1/models")
    async def list_models(request: Request) -> HTTPResponse:
        return json(models_body(engine.model_name, app.ctx.created))

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        not_ready = engine.not_ready_error()
        if not_ready is None:
            return json({"status": "ready", "model": engine.model_name})
        status, body = error_response(not_ready, request.path)
        headers = {"Retry-After": str(retry_after_s(not_ready) or 5)}
        return json({"status": engine.state.value, **body}, status=status, headers=headers)

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> HTTPResponse:
        metrics.set_engine_state(engine.ready, engine.num_running, engine.num_waiting, _cuda_peak_bytes())
        payload, content_type = metrics.render()
        return raw(payload, content_type=content_type)

    @app.on_request
    async def start(request: Request) -> HTTPResponse | None:
        request.ctx.started = time.perf_counter()
        request.ctx.completion = None
        request.ctx.streaming = False
        client_id = request.headers.get("x-request-id", "")
        request.ctx.request_id = f"chatcmpl-{client_id}" if _CLIENT_REQUEST_ID.match(client_id) else new_request_id()
        # every request binds its own (keep-alive requests of one connection share a task)
        logs.bind(request_id=client_id if _CLIENT_REQUEST_ID.match(client_id) else request.ctx.request_id,
                  sender_id=None)
        if api_key and request.path not in OPEN_PATHS and not _authorized(request, api_key):
            status, body = error_response(Unauthorized(), request.path)
            return json(body, status=status, headers={"WWW-Authenticate": "Bearer"})
        return None

    @app.on_response
    async def record(request: Request, response: HTTPResponse) -> None:
        if request.ctx.streaming:
            return  # recorded when the stream ends
        if request.path == COMPLETIONS_ROUTE:
            response.headers["x-request-id"] = request.ctx.request_id
        _record(request, response.status)

    def _record(request: Request, status: int) -> None:
        """Count and log a request once: its first outcome wins. (A disconnect is recorded as 499
        where the handler is cancelled; Sanic then still runs the error handler and the response
        middleware for a response nobody receives.)"""
        if request.path != COMPLETIONS_ROUTE or not hasattr(request.ctx, "started"):
            return
        if getattr(request.ctx, "recorded", False):
            return
        request.ctx.recorded = True
        duration = time.perf_counter() - request.ctx.started
        metrics.observe_request(status, duration)
        completion = request.ctx.completion
        if completion is not None:
            logger.info(
                "%s status=%d prompt_tokens=%d completion_tokens=%d duration=%.3fs finish_reason=%s%s",
                request.ctx.request_id, status, completion.prompt_tokens, completion.completion_tokens,
                duration, completion.finish_reason.value, " stream" if request.ctx.streaming else "",
            )
        else:
            logger.info("%s status=%d duration=%.3fs", request.ctx.request_id, status, duration)

    @app.exception(Exception, RequestCancelled)
    async def handle_error(request: Request, exc: BaseException) -> HTTPResponse:
        status, body = error_response(exc, request.path if request else "")
        retry = retry_after_s(exc) or (5 if status == 503 else None)
        headers = {"Retry-After": str(retry)} if retry else None
        return json(body, status=status, headers=headers)

    @app.after_server_start
    async def warm_up_in_background(app: Sanic) -> None:
        # /health answers while this runs; /ready turns 200 when it is done. Only a freshly
        # loaded engine warms up: a ready, failed or closed one is left as it is.
        if engine.state is EngineState.LOADED:
            app.ctx.warm_up_task = asyncio.get_running_loop().create_task(_warm_up(engine))

    @app.before_server_stop
    async def cancel_warm_up(app: Sanic) -> None:
        task = getattr(app.ctx, "warm_up_task", None)
        if task is not None and not task.done():
            task.cancel()

    return app


def _authorized(request: Request, api_key: bytes) -> bool:
    return bearer_matches(request.headers.get("authorization"), api_key)


def _cuda_peak_bytes() -> int:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else 0


async def _warm_up(engine: Engine) -> None:
    """Warm the engine up off the event loop. A failure leaves /ready 503 with the reason; it never stops
    the server (a shutdown that meets the warm-up ends it quietly, in the engine)."""
    try:
        await asyncio.get_running_loop().run_in_executor(None, engine.warm_up)
    except Exception:
        logger.exception("Warm-up generation failed (%s); the service stays up and /ready answers 503", engine.failure)


def run(config: ServiceConfig, engine: Engine) -> int:
    """Serve until SIGINT/SIGTERM in this process (no workers, no reloader); return the exit code."""
    app = create_app(config, engine)

    @app.before_server_stop
    async def stop_engine(app: Sanic) -> None:
        # Drain: new requests get 503, queued and running ones end at the scheduler's next step
        # boundary with 503 (shutting_down), so the open connections finish at once.
        await asyncio.get_running_loop().run_in_executor(None, engine.close)

    logger.info("Listening on http://%s:%d (model %s)", config.host, config.port, engine.model_name)
    app.run(
        host=config.host,
        port=config.port,
        single_process=True,
        access_log=False,
        motd=False,
    )
    return 0
