"""Deprecated for one release: the FAQ gate moved to ``ridgeline_rasa.faq_gate.FaqConfidenceGate``.

A config.yml, or a model trained before the move, may still name
``components.faq_gate.FaqConfidenceGate``: Rasa imports it from its working directory, and
``components.faq_gate`` is then ``ridgeline_rasa.faq_gate`` itself, with a DeprecationWarning.
"""
