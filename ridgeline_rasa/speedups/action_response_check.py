"""Rasa's check of every action server response, with its JSON schema compiled once.

Rasa 3.6 checks each response with ``jsonschema.validate(response, schema)``, and that call
first checks the schema itself against JSON Schema's meta-schema: about a quarter of a form
turn's time on the development machine, spent on a schema that never changes.
``install()`` makes ``RemoteAction`` check valid responses with a validator built once;
an invalid response still goes through Rasa's own check, so it fails exactly as before,
with Rasa's message. Installed when the server starts (``ridgeline_rasa.install``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict

_ORIGINAL = "_ridgeline_original_validate_action_result"


def install() -> None:
    """Idempotent: a second call leaves the first one's check in place."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    if hasattr(RemoteAction, _ORIGINAL):
        return
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    original: Callable[[Any, Dict[str, Any]], bool] = RemoteAction._validate_action_result

    @functools.wraps(original)
    def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
        if validator.is_valid(result):
            return True
        return original(self, result)  # raises Rasa's ValidationError with its message

    setattr(RemoteAction, _ORIGINAL, original)
    RemoteAction._validate_action_result = validate_action_result
