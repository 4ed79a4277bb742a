"""Fixtures shared across test folders, registered here once so a session starts their servers once."""

from tests.support.replicas import (channel_rasa, fake_slack, fake_telegram, postgres, redis,  # noqa: F401
                            replicas, slow_llm)
