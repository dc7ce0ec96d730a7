"""The faithfulness guard: captions may rephrase the speaker, never add to what they said."""

from __future__ import annotations

from transcribe.clean.faithfulness import check, stem

SPOKEN = (
    "Um, so this is a photo of a harbour. There are three, no, four boats tied to the pier, and a red "
    "lighthouse on the left. A sign says twenty five knots. Two children are sitting on the wall."
)


def test_faithful_rewrite_passes() -> None:
    caption = (
        "The image shows a harbour with 4 boats tied to the pier and a red lighthouse on the left. "
        "A sign reads 25 knots. Two children sit on the wall."
    )
    report = check(caption, SPOKEN, threshold=0.15)
    # "reads" is the one word of its own; under the threshold, listed but not flagged.
    assert report.unsupported_words == ["reads"]
    assert report.missing_numbers == []
    assert report.flagged is False and report.flags == []
    assert 0.9 < report.score < 1.0


def test_invented_details_are_listed_and_flag_the_caption() -> None:
    caption = (
        "Four wooden fishing boats float on calm turquoise water beside a red lighthouse, while two "
        "children sit on the wall under a stormy sky. A sign says 25 knots."
    )
    report = check(caption, SPOKEN, threshold=0.15)
    assert {"wooden", "fishing", "turquoise", "stormy", "sky"} <= set(report.unsupported_words)
    assert "boats" not in report.unsupported_words and "children" not in report.unsupported_words
    assert report.flagged and "unsupported_words" in report.flags
    assert report.score < 0.85


def test_threshold_decides_the_flag() -> None:
    caption = "A harbour with four boats, a red lighthouse on the left, a sign saying 25 knots, two seagulls."
    lenient = check(caption, SPOKEN, threshold=0.5)
    strict = check(caption, SPOKEN, threshold=0.0)
    assert lenient.unsupported_words == strict.unsupported_words == ["seagulls"]
    assert "unsupported_words" not in lenient.flags
    assert "unsupported_words" in strict.flags


def test_lost_numbers_flag_the_caption() -> None:
    caption = "A harbour with boats tied to the pier, a red lighthouse on the left and children on the wall."
    report = check(caption, SPOKEN, threshold=0.15)
    assert report.missing_numbers == ["four", "25", "Two"]
    assert "numbers_lost" in report.flags and report.flagged


def test_a_corrected_away_number_is_not_support() -> None:
    caption = "A harbour with three boats, a red lighthouse on the left, a sign: 25 knots, two children."
    report = check(caption, SPOKEN, threshold=0.15)
    assert "three" in report.unsupported_words
    assert report.missing_numbers == ["four"]


def test_numbers_compare_by_value_in_either_spelling() -> None:
    assert check("There are 12 cups and four plates.", "twelve cups and 4 plates", 0.1).flags == []
    assert check("A pair of shoes: 2 shoes.", "a pair of shoes", 0.5).unsupported_words == []
    report = check("There are 13 cups.", "twelve cups", 0.1)
    assert report.unsupported_words == ["13"]
    assert report.missing_numbers == ["12"]  # as the rules cleaner writes it


def test_the_pronoun_one_is_not_a_count() -> None:
    report = check("A blue car next to a red car.", "a blue car and the red one next to it", 0.5)
    assert report.missing_numbers == []


def test_merged_caption_is_checked_against_all_transcripts() -> None:
    first = "a dog on a sofa"
    second = "there's a green lamp behind the sofa"
    report = check("A dog lies on a sofa with a green lamp behind it.", [first, second], 0.15)
    assert report.unsupported_words == ["lies"]
    assert check("A dog on a sofa with a green lamp.", [first], 0.15).unsupported_words == ["green", "lamp"]


def test_empty_caption_is_flagged() -> None:
    report = check("", SPOKEN, threshold=0.15)
    assert report.flagged and report.flags[0] == "empty" and report.score == 0.0


def test_stem_joins_inflections() -> None:
    assert stem("boats") == stem("boat")
    assert stem("parked") == stem("parking") == stem("park")
    assert stem("sitting") == stem("sits")
    assert stem("children") == stem("child")
    assert stem("benches") == stem("bench")
    assert stem("berries") == stem("berry")
    assert stem("grey") == stem("gray")
    assert stem("glass") != stem("gas")


def test_a_summary_that_drops_most_facts_is_flagged() -> None:
    summary = "A harbour with 4 boats, a sign saying 25 knots and two children."
    report = check(summary, SPOKEN, threshold=0.15)
    assert report.unsupported_words == [] and report.missing_numbers == []
    assert report.coverage < 0.5 and report.flags == ["low_coverage"]
    dense = "A harbour: 4 boats tied to the pier, a red lighthouse on the left, a sign that says 25 knots "
    dense += "and two children sitting on the wall."
    assert check(dense, SPOKEN, threshold=0.15).coverage == 1.0
