"""FaqConfidenceGate: a store-policy answer only when the ResponseSelector is sure of it.

In Rasa 3.6 the FallbackClassifier looks at the intent's confidence only. An open question
("how do I repair a tear in my tent fly") that DIET calls `faq` still gets one of the five
canned policy answers, because the ResponseSelector always picks one. This component runs
after the ResponseSelector: when the intent is the retrieval intent (`faq`) and the selected
response's confidence (times the intent's confidence with `use_intent_confidence`) is below
`threshold`, the message becomes `nlu_fallback` (-> the rule
sends it to action_llm_response, which has the store's facts in its prompt anyway), the
way FallbackClassifier marks it: nlu_fallback first in the ranking with the threshold as
its confidence, the original prediction kept below it. Messages of other intents pass as
they are.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
)
from rasa.shared.nlu.training_data.message import Message

RESPONSE_SELECTOR_KEY = "response_selector"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class FaqConfidenceGate(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # the retrieval intent whose answers are gated
            "retrieval_intent": "faq",
            # below this ResponseSelector confidence the message becomes `fallback_intent_name`
            "threshold": 0.5,
            # compare intent confidence x response confidence (the probability that this canned
            # answer is the right one) instead of the response confidence alone
            "use_intent_confidence": False,
            "fallback_intent_name": DEFAULT_NLU_FALLBACK_INTENT_NAME,
        }

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "FaqConfidenceGate":
        return cls(config)

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.retrieval_intent = config["retrieval_intent"]
        self.threshold = float(config["threshold"])
        self.fallback_intent_name = config["fallback_intent_name"]
        self.use_intent_confidence = bool(config["use_intent_confidence"])
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"FaqConfidenceGate: threshold must be in [0, 1], not {self.threshold}")

    def selected_confidence(self, message: Message) -> float | None:
        """The confidence of the response the ResponseSelector chose, None when it chose none."""
        selectors = message.get(RESPONSE_SELECTOR_KEY) or {}
        selected = selectors.get(self.retrieval_intent) or selectors.get("default") or {}
        confidence = (selected.get("response") or {}).get(PREDICTED_CONFIDENCE_KEY)
        return None if confidence is None else float(confidence)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) != self.retrieval_intent:
                continue
            confidence = self.selected_confidence(message)
            if confidence is not None and self.use_intent_confidence:
                confidence *= float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            if confidence is not None and confidence >= self.threshold:
                continue
            message.data[INTENT] = {INTENT_NAME_KEY: self.fallback_intent_name,
                                    PREDICTED_CONFIDENCE_KEY: self.threshold}
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.data[INTENT_RANKING_KEY] = [dict(message.data[INTENT])] + [
                r for r in ranking if r.get(INTENT_NAME_KEY) != self.fallback_intent_name]
        return messages
