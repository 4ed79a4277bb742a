from __future__ import annotations

import copy

import pytest
import yaml

from ridgeline import knowledge
from ridgeline.paths import STORE_FACTS as DEFAULT_STORE_FACTS


def test_generated_faq_responses_match_the_store_facts():
    """rasa_project/domain/faq.yml must be regenerated whenever knowledge/store.yml changes."""
    assert knowledge.main(["check"]) == 0, "run `make faq-responses`"


def test_faq_domain_has_one_response_per_topic():
    responses = knowledge.load().faq_domain()["responses"]
    assert sorted(responses) == sorted(f"utter_faq/{t}" for t in knowledge.FAQ_TOPICS)


def test_check_fails_on_a_stale_domain_file(tmp_path, capsys):
    stale = tmp_path / "faq.yml"
    stale.write_text("responses: {}\n")
    assert knowledge.main(["check", "--domain-file", str(stale)]) == 1
    assert "make faq-responses" in capsys.readouterr().err


def test_missing_faq_topic_is_named():
    data = yaml.safe_load(DEFAULT_STORE_FACTS.read_text())
    broken = copy.deepcopy(data)
    del broken["faq"]["warranty"]
    with pytest.raises(knowledge.KnowledgeError, match="faq lacks warranty"):
        knowledge.parse(broken)
