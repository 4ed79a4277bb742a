"""Deprecated: ``components.faq_gate`` is ``ridgeline_rasa.faq_gate`` (see connectors/__init__.py)."""

from connectors import moved

moved(__name__)
