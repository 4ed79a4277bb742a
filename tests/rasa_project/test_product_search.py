"""Product search on the Rasa side: the contract with the action server (domain/catalog.yml),
its rules, the entities the extractor can give, and the held-out scoring of its handlers.
PyYAML only; the trained model is exercised by test_rasa_project.py's slow tests."""

from __future__ import annotations

import re

import yaml

from tests.rasa_project.test_rasa_project import PROJECT, _domain, _examples, _intent_names, _load

SEARCH_INTENTS = {"product_search": "action_search_products", "refine_search": "action_search_products",
                  "more_like_this": "action_search_products", "product_details": "action_product_details",
                  "compare_products": "action_product_details"}
ENTITIES = ("product_category", "brand", "sku", "max_price", "persons", "temperature", "weight", "volume")


def test_the_domain_holds_the_action_servers_contract():
    catalog = _load(PROJECT / "domain" / "catalog.yml")
    assert set(_intent_names(catalog)) == set(SEARCH_INTENTS)
    entities = {next(iter(e)): e[next(iter(e))] for e in catalog["entities"]}
    assert set(entities) == set(ENTITIES)
    # a gear word in any message ("my tent pole broke") must not change the dialogue
    assert all(settings == {"influence_conversation": False} for settings in entities.values())
    slots = catalog["slots"]
    assert slots["search_query"]["type"] == "any" and slots["search_results"]["type"] == "list"
    for name in ("search_query", "search_results"):
        assert slots[name]["influence_conversation"] is False
        assert slots[name]["mappings"] == [{"type": "custom"}]  # no `action:`: only the actions set them
    assert set(catalog["actions"]) == set(SEARCH_INTENTS.values())


def test_each_search_intent_has_one_rule_to_its_action_and_nothing_after():
    rules = [r for r in _load(PROJECT / "data" / "rules.yml")["rules"]
             if r["steps"][0].get("intent") in SEARCH_INTENTS]
    assert sorted(r["steps"][0]["intent"] for r in rules) == sorted(SEARCH_INTENTS)
    for rule in rules:
        assert "condition" not in rule
        assert rule["steps"] == [{"intent": rule["steps"][0]["intent"]},
                                 {"action": SEARCH_INTENTS[rule["steps"][0]["intent"]]}]


def test_every_extracted_entity_is_annotated_in_some_training_example():
    """RegexEntityExtractor only uses a lookup table or regex named like an entity that some NLU
    example annotates (use_only_entities in Rasa 3.6): without one, that entity is never extracted."""
    annotated = set()
    for path in (PROJECT / "data" / "nlu").glob("*.yml"):
        for block in _load(path).get("nlu", []):
            for text in _examples(block) if "intent" in block else []:
                annotated |= set(re.findall(r"\]\((\w+)\)", text))
                annotated |= set(re.findall(r'\]\{"entity": "(\w+)"', text))
    assert set(ENTITIES) <= annotated, f"never annotated: {sorted(set(ENTITIES) - annotated)}"


def test_the_extractor_uses_the_lookup_tables():
    pipeline = {c["name"]: c for c in _load(PROJECT / "config.yml")["pipeline"]}
    extractor = pipeline["RegexEntityExtractor"]
    assert extractor["use_lookup_tables"] is True and extractor["use_regexes"] is True
    names = list(pipeline)
    assert names.index("RegexEntityExtractor") < names.index("EntitySynonymMapper")


def test_the_webchat_buttons_payloads_name_domain_intents_and_entities():
    domain = _domain()
    for payload in ('/product_details{"sku":"RO-10003"}', "/compare_products", '/more_like_this{"sku":"RO-10003"}'):
        match = re.fullmatch(r"/(\w+)(\{.*\})?", payload)
        assert match.group(1) in _intent_names(domain)
        for entity in yaml.safe_load(match.group(2) or "{}"):
            assert entity in {next(iter(e)) if isinstance(e, dict) else e for e in domain["entities"]}


def test_the_holdout_scores_search_intents_by_the_action_they_reach():
    from scripts.designer import EXPECTED_HANDLER, expected_handler

    for intent, action in SEARCH_INTENTS.items():
        assert expected_handler(intent) == action
    assert set(_intent_names(_domain())) - {"faq"} <= set(EXPECTED_HANDLER)
