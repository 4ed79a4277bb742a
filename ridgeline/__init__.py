"""The ground floor: what the Rasa side, the action server, the LLM service and training share.

Importable from both runtimes (Python 3.10 with Rasa 3.6, Python 3.11+ with the rest): the
standard library and PyYAML only, and no import of any other package of this project, while
every other package may import it (tests/architecture keeps both true). One module a purpose:

- ``ridgeline.paths``: where the checkout and the store facts are;
- ``ridgeline.knowledge``: the store facts, persona, system prompt and generated FAQ domain
  (``python -m ridgeline.knowledge write|check``);
- ``ridgeline.privacy``: personal data masked in every service's log;
- ``ridgeline.shapes``: the order-id, email and card-number rules;
- ``ridgeline.text``: lone surrogates, control characters, text cleaning;
- ``ridgeline.access``: the constant-time secret and bearer-token checks;
- ``ridgeline.settings``: ``ConfigError`` and ``parse_enum``, shared by every service's settings;
- ``ridgeline.history``: the conversation as the LLM sees it (merged roles, the history window);
- ``ridgeline.feedback``: the verdict buttons under an LLM reply, and how a click is read back.

Nothing is imported here, so ``import ridgeline.privacy`` loads neither YAML nor the facts.
"""
