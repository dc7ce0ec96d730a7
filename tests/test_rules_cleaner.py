"""The rules cleaner on a table of spoken descriptions, and the promises it makes on any input."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from db.settings import Settings
from transcribe.clean import RulesCleaner, load_cleaner
from transcribe.clean.numbers import find_numbers, normalise_numbers, parse_number_words
from transcribe.clean.rules import RULES_VERSION, clean_text

CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "cleaning_cases.yaml").read_text())
TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*")


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower().replace("’", "'"))


def _invented(spoken: str, cleaned: str) -> set[str]:
    """Words of `cleaned` that `spoken` does not contain. Numbers may change spelling, not value:
    each digit group must be the value of spelled words that survived cleaning."""
    words_only = clean_text(spoken, numbers=False)
    allowed_words = set(_tokens(spoken))
    invented = {token for token in _tokens(words_only) if token not in allowed_words}
    allowed = allowed_words | {f"{m.value:g}" for m in find_numbers(words_only)}
    return invented | {token for token in _tokens(cleaned) if token not in allowed}


def test_the_table_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_spoken_description_is_cleaned(case: dict[str, str]) -> None:
    assert clean_text(case["spoken"]) == case["cleaned"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_cleaning_never_invents_a_word_and_is_a_fixpoint(case: dict[str, str]) -> None:
    cleaned = clean_text(case["spoken"])
    assert _invented(case["spoken"], cleaned) == set()
    assert clean_text(cleaned) == cleaned


def _noisy(rng: random.Random) -> str:
    """A long random description: table sentences with extra fillers, repeats and pauses."""
    parts: list[str] = []
    for case in rng.sample(CASES, 8):
        for word in case["spoken"].split():
            roll = rng.random()
            if roll < 0.05:
                parts.append(rng.choice(["um,", "uh", "like,", "you know,", "hmm..."]))
            elif roll < 0.08:
                parts.append(word)  # a stuttered repeat
            parts.append(word)
    return " ".join(parts)


def test_random_noisy_descriptions_keep_the_promises() -> None:
    rng = random.Random(20240905)
    for _ in range(1000):
        spoken = _noisy(rng)
        cleaned = clean_text(spoken)
        assert _invented(spoken, cleaned) == set(), spoken
        assert len(_tokens(cleaned)) <= len(_tokens(spoken))
        assert not re.search(r"\b(?:um|uh|hmm)\b", cleaned, re.IGNORECASE), cleaned
        assert clean_text(cleaned) == cleaned, spoken
        assert cleaned[0].isupper() and cleaned[-1] in ".?!"


def test_deterministic() -> None:
    spoken = CASES[-5]["spoken"]
    assert len({clean_text(spoken) for _ in range(5)}) == 1


def test_numbers_are_read_and_normalised() -> None:
    assert parse_number_words("two thousand and five") == 2005
    assert parse_number_words("one hundred and twenty-three") == 123
    assert parse_number_words("a hundred") == 100
    assert parse_number_words("nineteen eighty four") is None  # not one number
    assert normalise_numbers("five and twenty three") == "five and 23"
    assert normalise_numbers("twelve fifteen") == "twelve fifteen"  # a time, left as spoken
    values = [m.value for m in find_numbers("3 cats, twenty five dogs, 1,200 ants and 2.5 m")]
    assert values == [3, 25, 1200, 2.5]


def test_rules_cleaner_result_carries_its_provenance() -> None:
    cleaner = load_cleaner(Settings(cleaner="rules"))
    assert isinstance(cleaner, RulesCleaner)
    result = cleaner.clean("um there are three, no, four boats")
    assert result.text == "There are four boats."
    assert (result.cleaner, result.model, result.prompt_version) == ("rules", "", RULES_VERSION)
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)
    assert [r.text for r in cleaner.clean_many(["a  cat", "uh"])] == ["A cat.", ""]
