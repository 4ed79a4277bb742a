"""Deprecated: see connectors/__init__.py (the new path is in its NEW_NAMES)."""

from connectors import moved

moved(__name__)
