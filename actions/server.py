"""The action server: rasa-sdk's server, answering only Rasa and refusing malformed calls with a 4xx.

``python -m actions.server`` takes rasa-sdk's own command-line options (``--actions actions
--port 5055``) and adds, around rasa-sdk's app:

- access: with ``ACTION_SERVER_TOKEN`` set, every route but ``/health`` and ``/metrics`` needs
  ``Authorization: Bearer <token>``, which Rasa sends from ``action_endpoint.headers``;
- metrics: ``GET /metrics`` in Prometheus' text format (``actions/metrics.py``): each action call
  counted and timed around rasa-sdk's executor (``MeasuredExecutor``);
- input: a ``/webhook`` body that is not a well-formed action call gets a 400 that says what is
  wrong, instead of rasa-sdk's 500 (which also echoed the request body, personal data included);
- logs: personal data (emails, phone numbers, order ids) is masked in every log line; with
  ``LOG_FORMAT=json`` each line is a JSON object carrying the request id Rasa sent in ``X-Request-ID``
  (a new one when it sent none) and the hash of the action call's sender (``ridgeline.logs``); the LLM
  client passes the request id on to the LLM service.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import zlib
from functools import partial
from typing import Any

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser, create_ssl_config
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionMissingDomainException
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from actions import metrics
from actions.config import ActionServerConfig, get_config, log_settings
from ridgeline import logs
from ridgeline.access import bearer_matches
from ridgeline.text import lone_surrogate_at

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/metrics"})  # scraped from inside the cluster; never routed publicly
SERVICE = "actions"  # the "service" of its JSON log lines


class MeasuredExecutor(ActionExecutor):
    """rasa-sdk's executor, each call counted by action and outcome and timed (``actions/metrics.py``)."""

    async def run(self, action_call: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        name = action_call.get("next_action") if isinstance(action_call, dict) else None
        if not name:
            return await super().run(action_call, *args, **kwargs)
        action = name if name in self.actions else "unknown"  # only registered names become labels
        started = time.perf_counter()
        try:
            result = await super().run(action_call, *args, **kwargs)
        except ActionMissingDomainException:
            raise  # Rasa calls again with the domain: that call is counted
        except Exception:
            metrics.count_action_call(action, "error", time.perf_counter() - started)
            raise
        metrics.count_action_call(action, "ok", time.perf_counter() - started)
        return result


class BadActionCall(ValueError):
    """A /webhook body that is not an action call Rasa would send."""


def _expect(value: Any, kind: type, where: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, kind):
        names = {dict: "an object", list: "a list", str: "a string"}
        raise BadActionCall(f"{where} must be {names.get(kind, kind.__name__)}, got {type(value).__name__}")
    # JSON's "\ud800": no JSON encoder (the LLM client's) can send it on
    if isinstance(value, str) and not value.isascii() and lone_surrogate_at(value) is not None:
        raise BadActionCall(f"{where} holds a lone surrogate, which is not Unicode text")


def validate_action_call(call: Any) -> None:
    """Raise ``BadActionCall`` unless ``call`` has the shape of a Rasa action call."""
    _expect(call, dict, "the body")
    _expect(call.get("next_action"), str, "next_action")
    if not call["next_action"].strip():
        raise BadActionCall("next_action is empty; name the action to run")
    _expect(call.get("version"), str, "version", required=False)
    domain = call.get("domain")
    _expect(domain, dict, "domain", required=False)
    for key in ("slots", "forms", "responses"):
        _expect((domain or {}).get(key), dict, f"domain.{key}", required=False)
    tracker = call.get("tracker")
    _expect(tracker, dict, "tracker")
    _expect(tracker.get("sender_id"), str, "tracker.sender_id")
    for key in ("slots", "latest_message", "active_loop", "latest_action"):
        _expect(tracker.get(key), dict, f"tracker.{key}", required=False)
    _expect(tracker.get("events"), list, "tracker.events", required=False)
    for index, event in enumerate(tracker.get("events") or []):
        _expect(event, dict, f"tracker.events[{index}]")
        _expect(event.get("event"), str, f"tracker.events[{index}].event")
        _expect(event.get("text"), str, f"tracker.events[{index}].text", required=False)
    latest = tracker.get("latest_message") or {}
    _expect(latest.get("text"), str, "tracker.latest_message.text", required=False)
    _expect(latest.get("intent"), dict, "tracker.latest_message.intent", required=False)
    _expect(latest.get("entities"), list, "tracker.latest_message.entities", required=False)


def _action_call(request: Request, max_bytes: int) -> Any:
    if request.headers.get("Content-Encoding") != "deflate":
        # request.json: Sanic keeps what it parsed, so rasa-sdk's handler does not parse the call again.
        if not request.body.strip():
            raise BadActionCall("the body is empty, not JSON")
        try:
            return request.json
        except SanicException:
            raise BadActionCall("the body is not JSON, or is nested too deeply to read") from None
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(request.body, max_bytes)
    except zlib.error:
        raise BadActionCall("the body is not valid deflate data") from None
    if inflater.unconsumed_tail:
        raise BadActionCall(f"the inflated body is larger than {max_bytes} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadActionCall("the body is not JSON") from None
    except RecursionError:
        raise BadActionCall("the body is nested too deeply to read") from None


def _error(status: int, message: str, **headers: str) -> HTTPResponse:
    return response.json({"error": message}, status=status, headers=headers or None)


def harden(app: Sanic, config: ActionServerConfig) -> Sanic:
    """Add access control, input checks and a body-free error handler to rasa-sdk's app."""
    app.config.REQUEST_MAX_SIZE = config.max_request_bytes
    token = config.action_server_token

    @app.on_request(priority=20)
    async def follow_request(request: Request) -> None:
        # every request binds its own (keep-alive requests of one connection share a task)
        logs.bind(request_id=logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER)), sender_id=None)

    @app.on_request(priority=10)
    async def only_rasa(request: Request) -> HTTPResponse | None:
        if token is None or request.path in OPEN_PATHS or request.method == "OPTIONS":
            return None
        if bearer_matches(request.headers.get("Authorization"), token):
            return None
        return _error(401, "This action server only answers Rasa: send the ACTION_SERVER_TOKEN as "
                           "'Authorization: Bearer <token>' (action_endpoint.headers in endpoints.yml).",
                      **{"WWW-Authenticate": "Bearer"})

    @app.on_request(priority=5)
    async def well_formed_calls(request: Request) -> HTTPResponse | None:
        if request.path != "/webhook" or request.method != "POST":
            return None
        try:
            call = _action_call(request, config.max_request_bytes)
            validate_action_call(call)
        except BadActionCall as error:
            return _error(400, f"Not an action call: {error}. Rasa sends "
                               '{"next_action": "...", "tracker": {"sender_id": "...", ...}, "domain": {...}}.')
        logs.bind(request_id=logs.current_request_id(), sender_id=call["tracker"]["sender_id"])
        return None

    async def on_error(request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, SanicException) and exception.status_code < 500:
            return _error(exception.status_code, str(exception))
        logger.error("%s %s failed", request.method, request.path, exc_info=exception)
        return _error(500, "The action server failed on this call; its log has the details.")

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> HTTPResponse:
        payload, content_type = metrics.render()
        return response.raw(payload, content_type=content_type)

    # rasa-sdk's own handler answers every exception with a 500 that echoes the request body;
    # a fresh handler replaces it (Sanic refuses a second one for Exception).
    app.error_handler = ErrorHandler()
    app.error_handler.add(Exception, on_error)
    return app


def configure_logging(args: argparse.Namespace) -> None:
    """rasa-sdk's logging, with personal data masked in every line (JSON lines with LOG_FORMAT=json)."""
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file,
                                 args.loglevel, args.logging_config_file)
    utils.update_sanic_log_level()
    logs.install(SERVICE, log_settings())


def create_app(executor: ActionExecutor, config: ActionServerConfig, args: argparse.Namespace) -> Sanic:
    """rasa-sdk's app for ``executor``, hardened.

    Module level, so that each Sanic worker (a fresh process) can build it; it sets up the
    worker's logging too, which the worker does not inherit.
    """
    configure_logging(args)
    app = create_app_for_serve(executor, cors_origins=args.cors, auto_reload=args.auto_reload,
                               endpoints=args.endpoints)
    logs.install(SERVICE, log_settings())  # the handlers Sanic's app set up, too
    return harden(app, config)


def main(argv: list[str] | None = None) -> None:
    args = create_argument_parser().parse_args(argv)
    configure_logging(args)
    config = get_config()  # after the logging: an old variable name's warning shows in the log
    if config.action_server_token is None:
        logger.warning("ACTION_SERVER_TOKEN is not set: this action server answers any caller. "
                       "Set the same token here and in Rasa's action_endpoint.headers.")

    executor = MeasuredExecutor()
    executor.register_package(args.actions_module or args.actions)
    loader = AppLoader(factory=partial(create_app, executor, config, args))
    app = loader.load()
    ssl = create_ssl_config(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    app.prepare(host=os.environ.get("SANIC_HOST", "0.0.0.0"), port=args.port, ssl=ssl,
                workers=utils.number_of_sanic_workers())
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
