"""The order-id and email rules, written once in ridgeline/shapes.py, and everything that uses them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from actions import orders_db
from ridgeline import shapes
from ridgeline.privacy import mask_personal_data
from training.config import DEFAULT_ORDER_ID_PATTERN
from training.redact import Redactor

REGEX_FILE = Path(__file__).resolve().parents[2] / "rasa_project" / "data" / "nlu" / "regex.yml"

ORDER_IDS = ["RG-10421", "rg10421", "RG 10421", "Rg_10421", "RG - 10421", "RG--10421", "rg__10421"]
NOT_ORDER_IDS = ["RG-1042", "RG-104211", "XRG-10421", "10421", "RG-ABCDE"]


def test_the_rasa_projects_regexes_are_the_ground_floors_rules():
    """data/nlu/regex.yml holds the same text as ridgeline/shapes.py: edit both, or this fails."""
    blocks = {block["regex"]: block["examples"] for block in yaml.safe_load(REGEX_FILE.read_text())["nlu"]}
    examples = {name: [line[2:] for line in text.splitlines() if line.startswith("- ")] for name, text in blocks.items()}
    assert examples == {"order_id": [shapes.ORDER_ID], "email": [shapes.EMAIL]}


@pytest.mark.parametrize("typed", ORDER_IDS)
def test_every_form_of_an_order_id_is_one_order_id_everywhere(typed):
    assert shapes.canonical_order_id(typed) == orders_db.normalize_order_id(typed) == "RG-10421"
    assert mask_personal_data(f"order {typed}.") == "order <order-id>."
    assert Redactor(DEFAULT_ORDER_ID_PATTERN).redact(f"order {typed}.")[0] == "order <ORDER_ID>."
    assert re.search(shapes.ORDER_ID, f"where is {typed}?").group(1) == "10421"


@pytest.mark.parametrize("typed", NOT_ORDER_IDS)
def test_near_misses_are_no_order_id_anywhere(typed):
    assert shapes.canonical_order_id(typed) is None
    assert mask_personal_data(f"order {typed}.") == f"order {typed}."
    assert Redactor(DEFAULT_ORDER_ID_PATTERN).redact(f"order {typed}.")[0] == f"order {typed}."
    assert re.search(shapes.ORDER_ID, f"where is {typed}?") is None


def test_an_order_id_may_be_typed_with_a_hash_and_spaces_around_it():
    assert shapes.canonical_order_id("  #RG 10421 ") == "RG-10421"
    assert shapes.canonical_order_id("RG-10421 please") is None


@pytest.mark.parametrize(("text", "email"), [
    ("it's anna.b+gear@example.co.uk", "anna.b+gear@example.co.uk"),
    ("<Anna.Berg@Example.com>", "Anna.Berg@Example.com"),
    ("write to a@b.io.", "a@b.io"),
])
def test_emails_are_found_in_text(text, email):
    assert re.search(shapes.EMAIL, text).group(0) == email


def test_a_percent_encoded_email_is_found_only_by_the_url_rule():
    assert re.search(shapes.EMAIL, "/conversations/anna%40example.com/tracker") is None
    assert re.search(shapes.EMAIL_OR_URL_ENCODED, "/conversations/anna%40example.com/tracker")


@pytest.mark.parametrize(("value", "whole"), [("a@b.io", True), ("anna", False), ("a@b", False),
                                              ("a@b.io x", False), ("x a@b.io", False)])
def test_is_email_takes_the_whole_value(value, whole):
    assert shapes.is_email(value) is whole


def test_luhn():
    assert shapes.luhn_ok("4111111111111111") and not shapes.luhn_ok("4111111111111112")
