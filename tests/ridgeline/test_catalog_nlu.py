"""ridgeline/catalog_nlu.py and the file it generates, rasa_project/data/nlu/catalog.yml."""

from __future__ import annotations

import re

import pytest
import yaml

from ridgeline import catalog_nlu, shapes
from ridgeline.catalog import CATEGORIES, read_catalog
from ridgeline.catalog_query import ENTITY_PATTERNS

CATALOG_CSV_HEADER = ("sku,name,brand,category,price_gbp,price_eur,weight_g,capacity_persons,temp_comfort_c,"
                      "waterproof_mm,volume_l,in_stock,url,description\n")


def _blocks() -> list[dict]:
    return yaml.safe_load(catalog_nlu.CATALOG_NLU_FILE.read_text(encoding="utf-8"))["nlu"]


def _examples(block: dict) -> list[str]:
    return [line[2:] for line in block["examples"].splitlines() if line.startswith("- ")]


def _by(kind: str) -> dict[str, list[str]]:
    return {block[kind]: _examples(block) for block in _blocks() if kind in block}


def _rasa_lookup_regex(elements: list[str]) -> re.Pattern:
    """The regex Rasa 3.6 builds from a lookup table (rasa/nlu/utils/pattern_utils.py), case-insensitive."""
    return re.compile("(\\b" + "\\b|\\b".join(re.escape(e) for e in elements) + "\\b)", re.IGNORECASE)


def _write_catalog(path, rows: list[str]):
    path.write_text(CATALOG_CSV_HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_committed_file_is_what_write_produces():
    """rasa_project/data/nlu/catalog.yml must be regenerated whenever the catalog or its words change."""
    assert catalog_nlu.CATALOG_NLU_FILE.read_text(encoding="utf-8") == catalog_nlu.render(read_catalog())
    assert catalog_nlu.main(["check"]) == 0, "run `make catalog-nlu`"


def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path, capsys):
    stale = tmp_path / "catalog.yml"
    stale.write_text('version: "3.1"\nnlu: []\n')
    assert catalog_nlu.main(["check", "--nlu-file", str(stale)]) == 1
    assert "make catalog-nlu" in capsys.readouterr().err
    assert catalog_nlu.main(["write", "--nlu-file", str(stale)]) == 0
    assert catalog_nlu.main(["check", "--nlu-file", str(stale)]) == 0
    missing = tmp_path / "absent.yml"
    assert catalog_nlu.main(["check", "--nlu-file", str(missing)]) == 1


def test_the_file_says_it_is_generated_and_how():
    head = catalog_nlu.CATALOG_NLU_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("# GENERATED from knowledge/catalog.csv") and "make catalog-nlu" in (
        catalog_nlu.CATALOG_NLU_FILE.read_text(encoding="utf-8").split("version:")[0])


def test_every_category_word_is_in_the_lookup_and_maps_to_its_category():
    lookups = _by("lookup")
    synonyms = {word: name for name, words in _by("synonym").items() for word in words}
    for category in CATEGORIES.values():
        for word in (category.label, category.plural, *category.synonyms):
            assert word in lookups["product_category"], word
            if word != category.name:
                assert synonyms[word] == category.name, word


def test_the_brand_lookup_holds_the_catalogs_brands_and_maps_lower_case_to_their_spelling():
    brands = sorted({product.brand for product in read_catalog()})
    assert sorted(_by("lookup")["brand"]) == brands
    synonyms = _by("synonym")
    for brand in brands:
        if brand.lower() != brand:
            assert synonyms[brand] == [brand.lower()]


def test_the_regexes_are_the_modules_strings_verbatim():
    regexes = _by("regex")
    assert regexes == {"sku": [shapes.SKU], **{name: [pattern] for name, pattern in ENTITY_PATTERNS.items()}}


def test_the_lookup_finds_the_whole_word_as_rasa_compiles_it():
    """Longer entries come first, so Rasa's alternation keeps "thermal top", not "thermal"."""
    table = _by("lookup")["product_category"]
    synonyms = {word: name for name, words in _by("synonym").items() for word in words}
    pattern = _rasa_lookup_regex(table)
    for text, span, category in [
        ("got any Head Torches in stock?", "Head Torches", "headlamp"),
        ("a thermal top for skiing", "thermal top", "base_layer"),
        ("which of your sleeping bags is warm", "sleeping bags", "sleeping_bag"),
        ("a pair of trekking poles please", "pair of trekking poles", "trekking_poles"),
        ("show me rucksacks around 40 litres", "rucksacks", "backpack"),
    ]:
        match = pattern.search(text)
        assert match and match.group(0) == span, text
        assert synonyms.get(match.group(0).lower(), match.group(0).lower()) == category
    assert pattern.search("backpacking is fun") is None  # word boundaries: no "backpack" inside a word
    lengths = [len(entry) for entry in table]
    assert lengths == sorted(lengths, reverse=True)


def test_the_output_is_deterministic_and_independent_of_the_catalogs_order(tmp_path):
    rows = [
        "RO-10001,A,Zeta,tent,10,12,,,,,,true,https://x/a,One.",
        "RO-10002,B,alpha works,stove,20,24,,,,,,false,https://x/b,Two.",
        "RO-10003,C,Zeta,stove,30,36,,,,,,true,https://x/c,Three.",
    ]
    first = read_catalog(_write_catalog(tmp_path / "a.csv", rows))
    second = read_catalog(_write_catalog(tmp_path / "b.csv", rows[::-1]))
    assert catalog_nlu.render(first) == catalog_nlu.render(second)
    assert catalog_nlu.brands(first) == ["Zeta", "alpha works"]
    text = catalog_nlu.render(first)
    assert "  - synonym: Zeta\n    examples: |\n      - zeta\n" in text
    assert "synonym: alpha works" not in text  # already lower case: nothing to map


def test_a_brand_that_is_also_a_category_word_is_refused(tmp_path):
    path = _write_catalog(tmp_path / "c.csv", ["RO-10001,A,Torch,headlamp,10,12,,,,,,true,https://x/a,One."])
    with pytest.raises(catalog_nlu.CatalogNluError, match="Torch"):
        catalog_nlu.render(read_catalog(path))
    assert catalog_nlu.main(["write", "--catalog", str(path), "--nlu-file", str(tmp_path / "out.yml")]) == 2
    assert not (tmp_path / "out.yml").exists()


def test_a_brand_yaml_would_misread_is_quoted(tmp_path):
    path = _write_catalog(tmp_path / "d.csv", ["RO-10001,A,Yes: Gear,tent,10,12,,,,,,true,https://x/a,One."])
    nlu = yaml.safe_load(catalog_nlu.render(read_catalog(path)))["nlu"]
    assert {"synonym": "Yes: Gear", "examples": "- yes: gear\n"} in nlu
