"""What the Rasa extension installs into a running Rasa server, in one named place.

Rasa Open Source 3.6 gives a project no start-up hook of its own: the one moment project code
runs with the server's Sanic app in hand is a channel blueprint's ``before_server_start``
listener. So every channel of this package calls ``on_server_start(blueprint)``, and the first
listener to run calls ``install(app)``, which installs each piece once:

1. ``mask_logs``: personal data (emails, phone numbers, order ids, card numbers, credentials)
   masked in every log line, now that Rasa and Sanic have set up every handler they will use;
2. the API guard (``ridgeline_rasa.api_guard``): clear 400s for malformed bodies sent to Rasa's
   HTTP API;
3. the action-response check (``speedups.action_response_check``): action server responses
   checked with a JSON schema compiled once;
4. the TensorFlow predict path (``speedups.tf_predict``): Rasa's models predict through their
   compiled function;
5. the regex featurizer in linear time (``speedups.regex_features``): a long message that names a
   catalog word many times no longer costs tokens x matches;
6. the metrics (``ridgeline_rasa.metrics``) learn the app, whose agent's domain names the real intents;
7. the request id (``ridgeline_rasa.request_id``): Rasa's calls to the action server carry the turn's
   ``X-Request-ID`` (the gate binds one to each turn).

With ``LOG_FORMAT=json`` (``ridgeline_rasa.settings``), ``mask_logs`` also makes every handler write
JSON lines with the service, the sender's hash and the request id (``ridgeline.logs``).

``GET /metrics`` itself is a route, and Sanic takes no new route once ``before_server_start`` runs, so
each channel's blueprint also asks for ``metrics.add_route(app)`` at ``main_process_start`` (in the main
process, before any worker starts).

Each step is idempotent, so however many channels ask, each is installed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ridgeline import logs
from ridgeline_rasa import settings

if TYPE_CHECKING:
    from sanic import Blueprint


SERVICE = "rasa"  # the "service" of its JSON log lines


def mask_logs() -> None:
    """Mask personal data in every log handler there is now, in JSON lines with LOG_FORMAT=json (idempotent).

    Also called when Rasa imports the channels (``ridgeline_rasa.channels``), the earliest moment
    it runs project code: log lines from then until the server starts are masked too.
    """
    logs.install(SERVICE, settings.current().logs)


def install(app: Any) -> None:
    """Install the extension into the Rasa server whose Sanic app is ``app`` (idempotent)."""
    from ridgeline_rasa import api_guard, metrics, request_id
    from ridgeline_rasa.speedups import action_response_check, regex_features, tf_predict

    api_guard.attach(app)
    action_response_check.install()
    tf_predict.install()
    regex_features.install()
    request_id.install()
    mask_logs()
    metrics.attach(app)


def on_server_start(blueprint: "Blueprint") -> None:
    """Call ``install(app)`` when the server that serves ``blueprint`` starts (Rasa's only hook), and add
    ``GET /metrics`` to it before that, while it still takes routes."""
    @blueprint.listener("main_process_start")
    async def serve_metrics(app: Any, _loop: Any) -> None:
        from ridgeline_rasa import metrics

        metrics.add_route(app)

    @blueprint.listener("before_server_start")
    async def install_extension(app: Any, _loop: Any) -> None:
        install(app)
