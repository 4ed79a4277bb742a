"""The catalog through the real stack: Rasa classifies, the action server searches the store
database, and the LLM gets the right products as sources; an invented price never reaches the
visitor. The LLM is an OpenAI-compatible server on loopback whose replies the test sets
(tests/support/fake_openai.py), so the prompt it received can be checked."""

from __future__ import annotations

import re

import pytest

from ridgeline.catalog import read_catalog
from ridgeline.catalog_query import Constraints
from ridgeline.shapes import SKU
from tests.e2e.conftest import Conversation, service_url
from tests.e2e.test_faults import actions_using_llm
from tests.support.fake_openai import FakeOpenAIServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CATALOG = {p.sku: p for p in read_catalog()}


@pytest.fixture(scope="module")
def scripted_llm(stack):
    with FakeOpenAIServer() as server, actions_using_llm(stack, server.base_url, timeout_s=10.0):
        yield server


@pytest.fixture
def visitor(stack, request) -> Conversation:
    return Conversation(service_url(stack, "rasa"), sender=f"catalog-{request.node.name}")


def test_a_structured_question_gets_three_catalog_products_meeting_every_limit(visitor):
    replies = visitor.say("do you have a 3 person tent under £400?")
    shown = [CATALOG[s] for s in re.findall(SKU, "\n".join(replies))]
    assert len(shown) == 3, replies
    assert all(Constraints(category="tent", persons=3, max_price_gbp=400).satisfied_by(p) for p in shown)


def test_a_follow_up_refines_the_search(visitor):
    first = [CATALOG[s] for s in re.findall(SKU, "\n".join(visitor.say("show me rucksacks around 40 litres")))]
    lighter = [CATALOG[s] for s in re.findall(SKU, "\n".join(visitor.say("anything lighter?")))]
    assert first and lighter, "no products shown"
    assert max(p.weight_g for p in lighter) < min(p.weight_g for p in first)


def test_something_the_store_does_not_sell_names_no_product(visitor):
    reply = "\n".join(visitor.say("do you sell kayaks?"))
    assert "don't sell kayaks" in reply
    assert not re.findall(SKU, reply) and not any(p.name in reply for p in CATALOG.values())


def test_an_open_question_gets_the_right_products_in_the_llm_prompt(visitor, scripted_llm):
    scripted_llm.behaviour.reply = "Layer up and pick a bag rated below the coldest night you expect."
    replies = visitor.say("how should I choose a sleeping bag for winter camping in the Cairngorms?")
    assert replies == [scripted_llm.behaviour.reply]
    prompt = scripted_llm.behaviour.requests[-1]["messages"]
    question = prompt[-1]["content"]
    assert question.startswith("how should I choose a sleeping bag for winter camping in the Cairngorms?\n\n")
    sources = [CATALOG[s] for s in re.findall(SKU, question)]
    assert len(sources) == 3 and all(p.category == "sleeping_bag" for p in sources)
    assert prompt[0]["role"] == "system" and not re.findall(SKU, prompt[0]["content"])  # the shared prompt stays shared


def test_an_invented_price_never_reaches_the_visitor(visitor, scripted_llm):
    scripted_llm.behaviour.reply = "Our warmest bag is only £12.34 this week!"
    reply = "\n".join(visitor.say("what sleeping bag would you recommend for a winter trip to Norway?"))
    assert "12.34" not in reply
    question = scripted_llm.behaviour.requests[-1]["messages"][-1]["content"]
    assert re.findall(SKU, reply) == re.findall(SKU, question)[:3] and reply.startswith("Here is what")
