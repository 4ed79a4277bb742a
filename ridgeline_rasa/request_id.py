"""Rasa's calls to the action server carry the turn's request id as an ``X-Request-ID`` header.

The channel gate (``channels/gate.py``) binds a request id to each turn (``ridgeline.logs.bound``);
Rasa 3.6 calls the action server in ``RemoteAction.run`` through ``EndpointConfig.request``
(``rasa/utils/endpoints.py``), which takes extra headers in ``headers=``. ``install()`` wraps that
method so that, inside a turn, it adds the header: the action server logs the same id, and passes
it on to the LLM service. Outside a turn (no id bound: the model server's polling, a call of Rasa's
HTTP API) nothing changes; a header the caller passes itself wins. An NLG server, if one is
configured, gets the header too (the same method calls it). Installed when the server starts
(``ridgeline_rasa.install``); ``uninstall()`` restores Rasa's method.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from ridgeline.logs import REQUEST_ID_HEADER, current_request_id

_ORIGINAL = "_ridgeline_original_endpoint_request"


def install() -> None:
    """Idempotent: a second call leaves the first one in place."""
    from rasa.utils.endpoints import EndpointConfig

    if hasattr(EndpointConfig, _ORIGINAL):
        return
    original: Callable[..., Any] = EndpointConfig.request

    @functools.wraps(original)
    async def request(self: Any, method: str = "post", subpath: Optional[str] = None,
                      content_type: Optional[str] = "application/json", compress: bool = False,
                      **kwargs: Any) -> Any:
        request_id = current_request_id()
        if request_id:
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(name.lower() == REQUEST_ID_HEADER.lower() for name in headers):
                headers[REQUEST_ID_HEADER] = request_id
            kwargs["headers"] = headers
        return await original(self, method, subpath, content_type, compress, **kwargs)

    setattr(EndpointConfig, _ORIGINAL, original)
    EndpointConfig.request = request


def uninstall() -> None:
    """Restore Rasa's own method (for tests)."""
    from rasa.utils.endpoints import EndpointConfig

    original = EndpointConfig.__dict__.get(_ORIGINAL)
    if original is not None:
        EndpointConfig.request = original
        delattr(EndpointConfig, _ORIGINAL)


def installed() -> bool:
    from rasa.utils.endpoints import EndpointConfig

    return hasattr(EndpointConfig, _ORIGINAL)
