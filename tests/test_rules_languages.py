"""The rules cleaner's per-language tables: table-driven cases, the promises it keeps in every language,
and what it does for a language without a table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from transcribe.clean import RulesCleaner
from transcribe.clean.languages import (
    _compile,
    base_language,
    language_name,
    language_table,
    shipped_languages,
)
from transcribe.clean.rules import clean_text

CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "cleaning_cases_languages.yaml").read_text())
IDS = [f"{case['language']}: {case['name']}" for case in CASES]
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|\d+")


def test_issue_languages_ship_a_table_each_with_cases() -> None:
    assert {"es", "fr", "de", "ar"} <= set(shipped_languages())
    covered = {base_language(case["language"]) for case in CASES}
    assert covered == set(shipped_languages()), "every shipped table needs cases in the YAML"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_spoken_description_is_cleaned_in_its_language(case: dict[str, str]) -> None:
    assert clean_text(case["spoken"], language=case["language"]) == case["cleaned"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_never_invents_a_word_and_is_a_fixpoint(case: dict[str, str]) -> None:
    cleaned = clean_text(case["spoken"], language=case["language"])
    assert set(WORD.findall(cleaned.lower())) <= set(WORD.findall(case["spoken"].lower()))
    assert clean_text(cleaned, language=case["language"]) == cleaned


def test_english_passes_do_not_run_on_other_languages() -> None:
    # English would drop "um"/"er" as fillers and write "twenty three" as 23.
    assert clean_text("um there are twenty three cats", language="en") == "There are 23 cats."
    assert (
        clean_text("Er hat um drei Uhr zwanzig Katzen.", language="de")
        == "Er hat um drei Uhr zwanzig Katzen."
    )


def test_a_language_without_a_table_is_only_tidied() -> None:
    spoken = "  um  there are twenty three cats , uh "
    assert language_table("sw") is None
    assert clean_text(spoken, language="sw") == "um there are twenty three cats, uh"
    assert clean_text("我看到 一只猫 ,  在桌子上", language="zh") == "我看到 一只猫, 在桌子上"


def test_the_cleaner_uses_each_transcripts_language() -> None:
    results = RulesCleaner().clean_many(
        ["Euh, un chat.", "Uh, a cat.", "Ähm, eine Katze."], ["fr", None, "de"]
    )
    assert [r.text for r in results] == ["Un chat.", "A cat.", "Eine Katze."]
    assert RulesCleaner().clean("Uh, a cat.").text == "A cat."  # English stays the default


def test_a_malformed_table_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"language table xx.toml: markers must be a list of non-empty strings"
    ):
        _compile("xx", {"name": "X", "hesitations": ["eh"], "markers": "bueno"})


def test_language_names_for_prompts() -> None:
    assert [language_name(code) for code in ("es-MX", "", "ar", "ZH", "sw")] == [
        "Spanish", "English", "Arabic", "Chinese", "sw",
    ]  # fmt: skip
