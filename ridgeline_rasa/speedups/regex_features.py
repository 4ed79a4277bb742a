"""Rasa's regex featurizer in linear time, same features.

``RegexFeaturizer._features_for_patterns`` marks each token that a pattern's match overlaps by
comparing every token with every match: tokens x matches per pattern. Since the catalog's
lookup tables became patterns (``rasa_project/data/nlu/catalog.yml``), a long message that names
a category many times ("tent tent tent ...", 20,000 words) makes that millions of comparisons
on every parse: 5.6 of 6.3 s for a 4,000-word message on the development machine, and a
100 KB message took over 30 s.

``install()`` replaces the method with one that finds, for each token, the first match ending
after the token starts (a binary search over the matches, whose starts and ends both increase:
``re.finditer`` returns non-overlapping matches in order) and checks that it starts before the
token ends: exactly Rasa's overlap test, so the token marks, the sequence features and the
sentence features are the same. Installed when the Rasa server starts (``ridgeline_rasa.install``);
``uninstall()`` restores Rasa's method.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

_ORIGINAL = "_ridgeline_original_features_for_patterns"


def features_for_patterns(self: Any, message: Any, attribute: str) -> Any:
    import numpy as np
    import scipy.sparse
    from rasa.nlu.constants import TOKENS_NAMES
    from rasa.shared.nlu.constants import ACTION_TEXT, RESPONSE, TEXT

    text = message.get(attribute)
    if not text:
        return None, None
    tokens = message.get(TOKENS_NAMES[attribute], [])
    if not tokens:
        return None, None
    flags = 0 if self.case_sensitive else re.IGNORECASE
    sequence_features = np.zeros([len(tokens), len(self.known_patterns)])
    sentence_features = np.zeros([1, len(self.known_patterns)])
    whole_sentence = attribute in [RESPONSE, TEXT, ACTION_TEXT]
    for pattern_index, pattern in enumerate(self.known_patterns):
        matches = list(re.finditer(pattern["pattern"], text, flags=flags))
        starts = [m.start() for m in matches]
        ends = [m.end() for m in matches]
        for token_index, token in enumerate(tokens):
            marks = token.get("pattern", default={})
            first = bisect.bisect_right(ends, token.start)  # the first match ending after the token starts
            hit = first < len(matches) and starts[first] < token.end
            marks[pattern["name"]] = hit
            if hit:
                sequence_features[token_index][pattern_index] = 1.0
                if whole_sentence:
                    sentence_features[0][pattern_index] = 1.0
            token.set("pattern", marks)
    return scipy.sparse.coo_matrix(sequence_features), scipy.sparse.coo_matrix(sentence_features)


def install() -> None:
    """Idempotent: a second call leaves the first one in place."""
    from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer

    if hasattr(RegexFeaturizer, _ORIGINAL):
        return
    setattr(RegexFeaturizer, _ORIGINAL, RegexFeaturizer._features_for_patterns)
    RegexFeaturizer._features_for_patterns = features_for_patterns


def uninstall() -> None:
    from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer

    original = getattr(RegexFeaturizer, _ORIGINAL, None)
    if original is not None:
        RegexFeaturizer._features_for_patterns = original
        delattr(RegexFeaturizer, _ORIGINAL)
