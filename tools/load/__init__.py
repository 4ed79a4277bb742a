"""The load generator: ``python -m tools.load`` (``make loadtest``); the code is in ``tools.load.generator``."""
