"""Clear 400s from Rasa's HTTP API for request bodies of the wrong shape.

Rasa 3.6's API handlers index into ``request.json`` as they find it: a list where an object
belongs, a number where text belongs, an empty body, or JSON nested a thousand levels deep gets
a 500 (``AttributeError``, or a ``ConversationError`` that wraps it). ``attach`` registers an
app-wide request middleware that checks the body of the routes in ``SHAPES`` before Rasa's
handler runs and answers 400 with a sentence that names the field (404 for an action or intent
the domain does not have: Rasa answers a 500, or a 404 that names a function instead). The
conversation id of every ``/conversations/<id>/...`` route is checked too: it is the tracker
store's key, at most 255 characters.
A well-formed body goes on to Rasa unchanged, so every error Rasa itself reports stays its own.

Only requests with valid credentials are checked: Rasa's API token (``?token=``, compared with
``RASA_AUTH_TOKEN`` from Rasa's environment, read once by ``ridgeline_rasa.settings``) or a JWT
signed with ``RASA_JWT_SECRET``. Any
other request goes on to Rasa, which answers its 401: the guard tells nothing (not even which
intents the domain has) to a caller who may not use the API.

``ridgeline_rasa.install.install(app)`` attaches it when the server starts, whichever channels are on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, Mapping, Optional, Tuple

from typing import TYPE_CHECKING

from ridgeline.access import bearer_token, same_secret
from ridgeline.text import has_control_characters, lone_surrogate_at
from ridgeline_rasa import settings
from ridgeline_rasa.settings import ApiAccess

if TYPE_CHECKING:  # the checks need no Sanic, so their tests need no Rasa
    from sanic import Blueprint
    from sanic.request import Request
    from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32  # Rasa's own bodies (a tracker's events with parse data) nest about 8 deep
MAX_JSON_VALUES = 200_000  # a 2 MiB body (SANIC_REQUEST_MAX_SIZE) of events holds far fewer
MAX_CONVERSATION_ID_CHARS = 255  # the sender_id column of Rasa's SQL tracker store
DOCS = "https://rasa.com/docs/rasa/pages/http-api"


@dataclass(frozen=True)
class Kind:
    """What a value must be, in words, and the test for it."""

    words: str
    test: Callable[[Any], bool]


STRING = Kind("a string", lambda v: isinstance(v, str))
NUMBER = Kind("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
OBJECT = Kind("a JSON object", lambda v: isinstance(v, dict))
EVENT_LIST = Kind("a JSON list of events", lambda v: isinstance(v, list))
ENTITIES = Kind('an object like {"order_id": "RG-10421"} or a list of {"entity": ..., "value": ...} objects',
                lambda v: isinstance(v, dict) or isinstance(v, list) and all(
                    isinstance(e, dict) and isinstance(e.get("entity"), str) and "value" in e for e in v))


@dataclass(frozen=True)
class Shape:
    body: Kind
    required: Dict[str, Kind] = field(default_factory=dict)
    optional: Dict[str, Kind] = field(default_factory=dict)
    # field -> (the attribute of Rasa's Domain that lists the values it may take, what they are)
    in_domain: Dict[str, Tuple[str, str]] = field(default_factory=dict)


NON_EMPTY_EVENTS = Kind("a JSON event or a non-empty list of events",
                        lambda v: isinstance(v, dict) or isinstance(v, list) and bool(v))
CONVERSATION = "conversations/<conversation_id:path>"

# (method, route as Rasa registers it) -> the body it needs. Routes not here are left to Rasa.
SHAPES: Dict[Tuple[str, str], Shape] = {
    ("POST", "model/parse"): Shape(OBJECT, {"text": STRING}, {"message_id": STRING}),
    ("POST", f"{CONVERSATION}/messages"): Shape(OBJECT, {"text": STRING, "sender": STRING}, {"parse_data": OBJECT}),
    ("POST", f"{CONVERSATION}/trigger_intent"): Shape(
        OBJECT, {"name": STRING}, {"entities": ENTITIES}, {"name": ("intents", "intent")}),
    ("POST", f"{CONVERSATION}/execute"): Shape(
        OBJECT, {"name": STRING}, {"policy": STRING, "confidence": NUMBER},
        {"name": ("action_names_or_texts", "action")}),
    # One event or a list (Rasa checks them against its schema); an empty list makes Rasa fail.
    ("POST", f"{CONVERSATION}/tracker/events"): Shape(NON_EMPTY_EVENTS),
    ("PUT", f"{CONVERSATION}/tracker/events"): Shape(EVENT_LIST),
    ("POST", "model/predict"): Shape(EVENT_LIST),
    ("PUT", "model"): Shape(OBJECT, {}, {"model_file": STRING, "model_server": OBJECT, "remote_storage": STRING}),
}


DomainNames = Callable[[str], Optional[Collection[str]]]


class BadBody(ValueError):
    """A request body Rasa cannot handle; the message says what to change."""

    status = 400


class NotInDomain(BadBody):
    """The body names an action or intent that the loaded model's domain does not have."""

    status = 404


def check_json(value: Any, max_depth: int = MAX_JSON_DEPTH, max_values: int = MAX_JSON_VALUES) -> None:
    """Raise ``BadBody`` if ``value`` nests deeper than ``max_depth``, holds more than
    ``max_values`` values, or holds a lone surrogate.

    A lone surrogate (``"\\ud800"``) is valid JSON but not Unicode text: storing it in the
    tracker fails. Deep nesting makes Rasa's own recursive code fail, and the value budget
    bounds the time this walk holds the event loop.
    """
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise BadBody(f"the body holds more than {max_values} values")
        if depth > max_depth and isinstance(item, (dict, list)):
            raise BadBody(f"the body is nested more than {max_depth} levels deep")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    at = lone_surrogate_at(text)
    if at is not None:
        raise BadBody(f"the body holds a lone surrogate (\\u{ord(text[at]):04x}), which is not Unicode text")


def check_conversation_id(conversation_id: str) -> None:
    if len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
        raise BadBody(f"the conversation id is longer than {MAX_CONVERSATION_ID_CHARS} characters")
    if has_control_characters(conversation_id):
        raise BadBody("the conversation id holds control characters")


def check_body(shape: Shape, body: Any, domain_names: DomainNames = lambda _: None) -> None:
    """Raise ``BadBody`` unless the decoded ``body`` has ``shape``.

    ``domain_names(attribute)`` lists the names the loaded domain has (``action_names_or_texts``),
    or is None without a loaded model (Rasa then answers 409 itself).
    """
    if body is None:
        raise BadBody(f"the body is empty; send {shape.body.words}")
    if not shape.body.test(body):
        raise BadBody(f"the body must be {shape.body.words}, got {_json_type(body)}")
    check_json(body)
    if not isinstance(body, dict):
        return
    for name, kind in shape.required.items():
        if name not in body:
            raise BadBody(f"'{name}' is missing; it must be {kind.words}")
    for name, kind in {**shape.required, **shape.optional}.items():
        value = body.get(name)
        if (value is not None or name in shape.required) and not kind.test(value):
            raise BadBody(f"'{name}' must be {kind.words}, got {_json_type(value)}")
    for name, (attribute, what) in shape.in_domain.items():
        known = domain_names(attribute)
        if known is not None and name in body and body[name] not in known:
            raise NotInDomain(f"the domain has no {what} {body[name]!r} (see GET /domain)")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def problem(method: str, route: str, conversation_id: Optional[str], raw_body: bytes,
            parse: Callable[[bytes], Any],
            domain_names: DomainNames = lambda _: None) -> Optional[BadBody]:
    """What is wrong with this API request (its message is a sentence), or None when Rasa can take it."""
    try:
        if conversation_id is not None:
            check_conversation_id(conversation_id)
        shape = SHAPES.get((method, route.lstrip("/")))
        if shape is None:
            return None
        try:
            body = parse(raw_body) if raw_body.strip() else None
        except Exception:  # noqa: BLE001 (any parser: not JSON, invalid UTF-8, too deep, too long a number)
            raise BadBody("the body is not JSON (or nests too deeply to read)") from None
        check_body(shape, body, domain_names)
    except BadBody as error:
        return error
    return None


def authorized(request: "Request", env: Optional[Mapping[str, str]] = None) -> bool:
    """Whether the request carries Rasa's API token or a JWT signed with Rasa's secret.

    The token and secret are Rasa's (``ridgeline_rasa.settings.ApiAccess``), or those of ``env``.
    """
    access = settings.current().api if env is None else ApiAccess.from_env(env)
    token, given = access.auth_token, request.args.get("token") or ""
    if token and given and same_secret(given, token):
        return True
    jwt_token = bearer_token(request.headers.get("Authorization"))
    if not access.jwt_secret or jwt_token is None:
        return False
    return valid_hmac_jwt(jwt_token, access.jwt_secret, access.jwt_method)


_HMAC_JWT = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def valid_hmac_jwt(token: str, secret: str, method: str) -> bool:
    """A JWT signed with ``secret`` by ``method`` (HS256/384/512) and not expired.

    Other methods (RS256 with a public key) are not checked here: such requests go on to Rasa
    unchecked, which is safe, only less helpful.
    """
    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    digest = _HMAC_JWT.get(method)
    parts = token.split(".")
    if digest is None or len(parts) != 3:
        return False
    try:
        header, payload, signature = json.loads(decode(parts[0])), json.loads(decode(parts[1])), decode(parts[2])
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        return False
    if not isinstance(header, dict) or header.get("alg") != method or not isinstance(payload, dict):
        return False
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), digest).digest()
    expires = payload.get("exp")
    return same_secret(signature, expected) and (
        not isinstance(expires, (int, float)) or expires > time.time())


def attach(app: Any) -> None:
    """Check Rasa's API requests on ``app`` (once, however many channels ask)."""
    if getattr(app.ctx, "ridgeline_api_guard", False):
        return
    app.ctx.ridgeline_api_guard = True
    app.register_middleware(guard, "request")


async def guard(request: "Request") -> Optional["HTTPResponse"]:
    route = getattr(request, "route", None)
    if route is None or not authorized(request):
        return None
    from sanic.response import json as json_response

    limit = request.app.config.REQUEST_MAX_SIZE
    length = request.headers.get("content-length") or "0"
    if length.isdigit() and int(length) > limit:  # Sanic would hand on an empty body
        return json_response({"status": "failure", "reason": "PayloadTooLarge", "code": 413,
                              "message": f"the body is larger than {limit} bytes.", "help": DOCS}, status=413)

    def domain_names(attribute: str) -> Optional[Collection[str]]:
        agent = getattr(request.app.ctx, "agent", None)
        return getattr(getattr(agent, "domain", None), attribute, None)

    conversation_id = (request.match_info or {}).get("conversation_id")
    # request.json: Rasa's handlers then read the body this parsed, with the same parser.
    error = problem(request.method, route.path, conversation_id, request.body, lambda _: request.json,
                    domain_names)
    if error is None:
        return None
    logger.info("%s %s refused: %s", request.method, request.path, error)
    reason = "NotFound" if error.status == 404 else "BadRequest"
    return json_response({"status": "failure", "reason": reason, "code": error.status,
                          "message": f"{error}.", "help": DOCS}, status=error.status)
