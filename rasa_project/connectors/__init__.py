"""Deprecated for one release: the channel connectors moved to the installed package ``ridgeline_rasa``.

An operator's own credentials.yml or endpoints.yml may still name ``connectors.<module>.<Class>``:
Rasa imports those from its working directory (rasa_project/, or /app in the image), and each
module here is then the new module itself (the same classes, the same shared gate), with a
DeprecationWarning that names the new path. Rename them as ``NEW_NAMES`` says.
"""

from __future__ import annotations

import importlib
import sys
import warnings

NEW_NAMES = {
    "connectors.rest": "ridgeline_rasa.channels.rest",
    "connectors.socketio": "ridgeline_rasa.channels.socketio",
    "connectors.slack": "ridgeline_rasa.channels.slack",
    "connectors.telegram": "ridgeline_rasa.channels.telegram",
    "connectors.common": "ridgeline_rasa.channels.common",
    "connectors.gate": "ridgeline_rasa.channels.gate",
    "connectors.api_guard": "ridgeline_rasa.api_guard",
    "connectors.sqlite_tracker_store": "ridgeline_rasa.tracker_store",
    "connectors.action_response_check": "ridgeline_rasa.speedups.action_response_check",
    "connectors.tf_predict": "ridgeline_rasa.speedups.tf_predict",
    "components.faq_gate": "ridgeline_rasa.faq_gate",
}


def moved(old: str) -> None:
    """Make the module ``old`` (being imported) the module it moved to, and say so."""
    new = NEW_NAMES[old]
    warnings.warn(f"{old} moved to {new}: write {new}.<Class> wherever {old}.<Class> is named "
                  "(credentials.yml, endpoints.yml, config.yml); the old path goes in the next release.",
                  DeprecationWarning, stacklevel=2)
    sys.modules[old] = importlib.import_module(new)
