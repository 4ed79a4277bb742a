"""HTTP transport of the LLM service: the Sanic app factory and ``run``.

Endpoints (OpenAI-compatible where OpenAI has one):

    POST /v1/chat/completions   a chat completion (non-streaming)
    GET  /v1/models             the one served model
    GET  /health                the process is alive: always 200
    GET  /ready                 200 once the model is loaded and warmed up, 503 before
    GET  /metrics               Prometheus exposition

This module parses nothing itself (``protocol``), generates nothing itself
(``engine``) and formats errors in exactly one handler (``errors``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json, raw

from llm.config import ServiceConfig
from llm.engine.base import Engine
from llm.errors import ModelNotReady, error_response
from llm.metrics import ServiceMetrics
from llm.protocol import (
    chat_completion_body,
    models_body,
    new_request_id,
    parse_chat_request,
    parse_json_body,
)

logger = logging.getLogger(__name__)

COMPLETIONS_ROUTE = "/v1/chat/completions"
MAX_BODY_BYTES = 1024 * 1024
# The longest a single generation may take before Sanic answers 503 on its own.
RESPONSE_TIMEOUT_S = 600
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
    app.ctx.metrics = metrics or ServiceMetrics()
    app.ctx.created = int(time.time())
    app.ctx.exit_code = 0

    @app.post(COMPLETIONS_ROUTE)
    async def chat_completions(request: Request) -> HTTPResponse:
        if not engine.ready:
            raise ModelNotReady()
        body = parse_json_body(request.body)
        chat_request = parse_chat_request(
            body,
            max_tokens_cap=config.max_new_tokens_cap,
            default_max_tokens=config.default_max_tokens,
            request_id=request.ctx.request_id,
        )
        app.ctx.metrics.requests_in_progress.inc()
        try:
            completion = await engine.generate(chat_request)
        finally:
            app.ctx.metrics.requests_in_progress.dec()
        request.ctx.completion = completion
        app.ctx.metrics.observe_completion(
            completion.prompt_tokens, completion.completion_tokens, completion.finish_reason.value
        )
        return json(chat_completion_body(chat_request, completion, engine.model_name))

    @app.get("/v1/models")
    async def list_models(request: Request) -> HTTPResponse:
        return json(models_body(engine.model_name, app.ctx.created))

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        if not engine.ready:
            state = "is loaded and warming up" if engine.loaded else "is still loading"
            raise ModelNotReady(f"The model {state}; retry in a few seconds.")
        return json({"status": "ready", "model": engine.model_name})

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> HTTPResponse:
        app.ctx.metrics.model_ready.set(1 if engine.ready else 0)
        payload, content_type = app.ctx.metrics.render()
        return raw(payload, content_type=content_type)

    @app.on_request
    async def start_timer(request: Request) -> None:
        request.ctx.started = time.perf_counter()
        request.ctx.completion = None
        client_id = request.headers.get("x-request-id", "")
        request.ctx.request_id = f"chatcmpl-{client_id}" if _CLIENT_REQUEST_ID.match(client_id) else new_request_id()

    @app.on_response
    async def record(request: Request, response: HTTPResponse) -> None:
        if request.path != COMPLETIONS_ROUTE or not hasattr(request.ctx, "started"):
            return
        duration = time.perf_counter() - request.ctx.started
        app.ctx.metrics.observe_request(response.status, duration)
        completion = request.ctx.completion
        request_id = request.ctx.request_id
        response.headers["x-request-id"] = request_id
        if completion is not None:
            logger.info(
                "%s status=%d prompt_tokens=%d completion_tokens=%d duration=%.3fs finish_reason=%s",
                request_id, response.status, completion.prompt_tokens, completion.completion_tokens,
                duration, completion.finish_reason.value,
            )
        else:
            logger.info("%s status=%d duration=%.3fs", request_id, response.status, duration)

    @app.exception(Exception)
    async def handle_error(request: Request, exc: Exception) -> HTTPResponse:
        status, body = error_response(exc, request.path if request else "")
        headers = {"Retry-After": "5"} if status == 503 else None
        return json(body, status=status, headers=headers)

    @app.after_server_start
    async def warm_up_in_background(app: Sanic) -> None:
        # /health answers while this runs; /ready turns 200 when it is done.
        if engine.loaded and not engine.ready:
            app.ctx.warm_up_task = asyncio.get_running_loop().create_task(_warm_up(app, engine))

    @app.before_server_stop
    async def cancel_warm_up(app: Sanic) -> None:
        task = getattr(app.ctx, "warm_up_task", None)
        if task is not None and not task.done():
            task.cancel()

    return app


async def _warm_up(app: Sanic, engine: Engine) -> None:
    try:
        await asyncio.get_running_loop().run_in_executor(None, engine.warm_up)
    except Exception:
        logger.exception("Warm-up generation failed; stopping the server")
        app.ctx.exit_code = 1
        app.stop()


def run(config: ServiceConfig, engine: Engine) -> int:
    """Serve until SIGINT/SIGTERM in this process (no workers, no reloader); return the exit code."""
    app = create_app(config, engine)

    @app.before_server_stop
    async def stop_engine(app: Sanic) -> None:
        engine.close()

    logger.info("Listening on http://%s:%d (model %s)", config.host, config.port, engine.model_name)
    app.run(
        host=config.host,
        port=config.port,
        single_process=True,
        access_log=False,
        motd=False,
    )
    return app.ctx.exit_code
