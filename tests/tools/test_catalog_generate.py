"""The catalog generator is reproducible and guards the committed file; the retrieval holdout set is
well-formed, its answers are exactly the products that satisfy each question, and it stays held out."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
import yaml

from ridgeline.catalog import CATEGORIES, Product, read_catalog
from ridgeline.paths import CATALOG_FILE, REPO_ROOT
from tools.catalog.generate import DEFAULT_SEED, main, render, retail_eur, slug

HOLDOUT = REPO_ROOT / "tools" / "catalog" / "retrieval_holdout.yml"
NUMERIC = ("max_price_gbp", "max_price_eur", "persons", "min_persons", "max_temp_comfort_c", "max_weight_g",
           "min_volume_l", "max_volume_l", "min_waterproof_mm", "in_stock")
KEYS = ("category", "brand", *NUMERIC)


# --- the generator -----------------------------------------------------------------------------

def test_two_runs_write_the_same_bytes(tmp_path, capsys):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["--output", str(first)]) == 0
    assert main(["--output", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert capsys.readouterr().out.count(f"products (seed {DEFAULT_SEED})") == 2


def test_the_seed_changes_the_numbers_not_the_products():
    default, other = render(), render(seed=7)
    assert default != other
    assert default.splitlines()[0] == other.splitlines()[0]
    names = [line.split(b",")[1] for line in default.splitlines()]
    assert names == [line.split(b",")[1] for line in other.splitlines()]


def test_the_file_is_utf8_with_newline_endings_and_loads(tmp_path):
    content = render()
    assert b"\r" not in content and content.endswith(b"\n")
    content.decode("utf-8")
    path = tmp_path / "catalog.csv"
    path.write_bytes(content)
    assert len(read_catalog(path)) == content.count(b"\n") - 1


def test_check_passes_on_the_committed_catalog(capsys):
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_fails_on_a_hand_edited_copy(tmp_path, capsys):
    copy = tmp_path / "catalog.csv"
    copy.write_bytes(CATALOG_FILE.read_bytes().replace(b",true,", b",false,", 1))
    assert main(["--check", "--output", str(copy)]) == 1
    message = capsys.readouterr().err
    assert str(copy) in message and "differs" in message and "python -m tools.catalog.generate" in message
    assert main(["--check", "--output", str(tmp_path / "missing.csv")]) == 1
    assert "is missing" in capsys.readouterr().err


def test_check_exits_1_from_the_command_line(tmp_path):
    copy = tmp_path / "catalog.csv"
    copy.write_bytes(CATALOG_FILE.read_bytes() + b"\n")
    result = subprocess.run([sys.executable, "-m", "tools.catalog.generate", "--check", "--output", str(copy)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "differs from what the generator writes" in result.stderr


def test_prices_and_slugs():
    assert retail_eur(189.00) == 221.00
    assert retail_eur(24.95) == 28.95
    assert retail_eur(349.99) == 408.99
    assert slug("Cairnwood Ember -10") == "cairnwood-ember-minus-10"
    assert slug("Ridgeline Boilpot 1.0") == "ridgeline-boilpot-1-0"


# --- the retrieval holdout set -----------------------------------------------------------------

def satisfies(product: Product, constraints: dict) -> bool:
    """The holdout's constraint keys, evaluated here independently of any retrieval code."""
    def at_most(value, limit):
        return value is not None and value <= limit

    def at_least(value, limit):
        return value is not None and value >= limit

    checks = {
        "category": lambda v: product.category == v,
        "brand": lambda v: product.brand.lower() == str(v).lower(),
        "max_price_gbp": lambda v: product.price_gbp <= v,
        "max_price_eur": lambda v: product.price_eur <= v,
        "persons": lambda v: product.capacity_persons == v,
        "min_persons": lambda v: at_least(product.capacity_persons, v),
        "max_temp_comfort_c": lambda v: at_most(product.temp_comfort_c, v),
        "max_weight_g": lambda v: at_most(product.weight_g, v),
        "min_volume_l": lambda v: at_least(product.volume_l, v),
        "max_volume_l": lambda v: at_most(product.volume_l, v),
        "min_waterproof_mm": lambda v: at_least(product.waterproof_mm, v),
        "in_stock": lambda v: product.in_stock is v,
    }
    return all(checks[key](value) for key, value in constraints.items())


@pytest.fixture(scope="module")
def holdout() -> dict:
    return yaml.safe_load(HOLDOUT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return read_catalog()


def test_the_evaluator_reads_an_empty_attribute_as_not_satisfying():
    mat = Product(sku="RO-10001", name="x", brand="Skerrow", category="sleeping_pad", price_gbp=30.0,
                  price_eur=35.0, weight_g=400, capacity_persons=None, temp_comfort_c=None, waterproof_mm=None,
                  volume_l=None, in_stock=False, url="u", description="d")
    assert satisfies(mat, {"category": "sleeping_pad", "brand": "skerrow", "max_weight_g": 400})
    assert not satisfies(mat, {"min_volume_l": 1})
    assert not satisfies(mat, {"max_temp_comfort_c": 20})
    assert not satisfies(mat, {"in_stock": True})
    assert not satisfies(mat, {"max_price_eur": 34.99})


def test_the_holdout_has_enough_questions_of_every_kind(holdout):
    sold, not_sold = holdout["sold"], holdout["not_sold"]
    assert len(sold) >= 90 and len(not_sold) >= 25
    per_category = Counter(q["constraints"].get("category") for q in sold)
    assert all(per_category[name] >= 5 for name in CATEGORIES), per_category
    numeric = [q for q in sold if set(q["constraints"]) & set(NUMERIC)]
    assert len(numeric) >= 0.5 * len(sold)
    assert len([q for q in sold if "brand" in q["constraints"]]) >= 8
    texts = [q["text"].strip().lower() for q in [*sold, *not_sold]]
    assert len(set(texts)) == len(texts), "a question is in the holdout twice"
    assert all(set(q) == {"text"} for q in not_sold)


def test_every_sold_question_has_exactly_the_products_that_answer_it(holdout, catalog):
    by_sku = {p.sku: p for p in catalog}
    for question in holdout["sold"]:
        constraints, answers = question["constraints"], question["answers"]
        assert set(question) == {"text", "constraints", "answers"}, question["text"]
        assert set(constraints) <= set(KEYS), (question["text"], set(constraints) - set(KEYS))
        assert constraints.get("category", "tent") in CATEGORIES, question["text"]
        assert answers, f"{question['text']!r} has no answer in the catalog"
        assert len(set(answers)) == len(answers), question["text"]
        unknown = [sku for sku in answers if sku not in by_sku]
        assert not unknown, (question["text"], unknown)
        wrong = [sku for sku in answers if not satisfies(by_sku[sku], constraints)]
        assert not wrong, (question["text"], wrong)
        missed = [p.sku for p in catalog if satisfies(p, constraints) and p.sku not in answers]
        assert not missed, (question["text"], missed)


def test_the_holdout_is_not_in_the_nlu_or_fine_tuning_data(holdout):
    files = [*sorted((REPO_ROOT / "rasa_project" / "data" / "nlu").glob("*.yml")),
             *sorted(p for p in (REPO_ROOT / "training" / "samples").rglob("*") if p.is_file())]
    assert files
    corpus = "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in files).lower()
    leaked = [q["text"] for q in [*holdout["sold"], *holdout["not_sold"]] if q["text"].strip().lower() in corpus]
    assert not leaked, f"held-out questions found in training data: {leaked}"


def test_not_sold_questions_name_nothing_the_catalog_has(holdout, catalog):
    """A not_sold question may share a word with a category ("tent peg hammer") but never names a product."""
    names = {p.name.lower() for p in catalog} | {p.name.lower().split(" ", 1)[1] for p in catalog}
    for question in holdout["not_sold"]:
        text = question["text"].lower()
        assert not [name for name in names if name in text], question["text"]


def test_the_holdout_file_says_what_it_is_first():
    header = HOLDOUT.read_text(encoding="utf-8").split("\nsold:")[0]
    assert "HELD OUT" in header and "Scoring" in header
