"""Custom actions for the Ridgeline assistant, served by rasa-sdk.

Run with ``python -m rasa_sdk --actions actions --port 5055``. rasa-sdk imports
every module of this package and registers each ``Action`` subclass it finds,
so modules here must have no import-time side effects.
"""
