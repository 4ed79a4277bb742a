"""The assistant's LLM inference service: an OpenAI-compatible chat-completions server.

Run it with ``python -m llm serve``; see ``llm/__main__.py`` for the command line.
"""
