"""The pure rules behind multilingual workers, unsure transcripts and the confidence cascade."""

from __future__ import annotations

import pytest

from transcribe import language_policy as policy
from transcribe.engines.base import Segment, TranscriptResult, Word

THRESHOLDS = policy.Thresholds(word_probability=0.5, word_share=0.2, mean_logprob=-0.8)


def result(
    probabilities: list[float], avg_logprob: float | None = -0.3, model: str = "tiny.en"
) -> TranscriptResult:
    words = [Word(float(i), float(i) + 0.5, f"w{i}", p) for i, p in enumerate(probabilities)]
    text = " ".join(word.word for word in words)
    segment = Segment(0.0, float(len(words)), text, avg_logprob, 0.01, words)
    return TranscriptResult(
        text, "en", [segment] if words else [], avg_logprob, "faster-whisper", model, "1", 9.0, 1.0
    )


@pytest.mark.parametrize(
    ("model", "english_only"),
    [
        ("tiny.en", True),
        ("base", False),
        ("small.en", True),
        ("large-v3", False),
        ("/models/whisper-medium.en/", True),
        ("/ckpt/tiny.en.pt", True),
        ("/models/custom", False),
    ],
)
def test_english_only_models_are_known_by_catalog_or_name(model: str, english_only: bool) -> None:
    assert policy.is_english_only(model) is english_only
    assert policy.claimable_languages(model) == (("en",) if english_only else None)


@pytest.mark.parametrize(
    ("model", "language", "allowed"),
    [
        ("tiny.en", "en", True),
        ("tiny.en", "en-GB", True),
        ("tiny.en", "", True),  # no language set: English, the projects' default
        ("tiny.en", "es", False),
        ("tiny.en", "ar", False),
        ("base", "es", True),
        ("base", "en", True),
    ],
)
def test_an_english_only_model_never_takes_another_language(model: str, language: str, allowed: bool) -> None:
    assert policy.may_transcribe(model, language) is allowed


def test_left_behind_message_names_languages_counts_and_the_model_to_use() -> None:
    message = policy.left_behind_message("tiny.en", {"es": 2, "de": 1})
    assert message.startswith("3 take(s) are left that the English-only model tiny.en must not transcribe")
    assert "(1 in de, 2 in es)" in message
    assert "VOICECAP_MODEL=base voicecap transcribe" in message and "voicecap models install base" in message


def test_a_sure_transcript_is_not_unsure() -> None:
    confidence = policy.measure(result([0.9, 0.8, 0.95, 0.4, 0.99]), THRESHOLDS)  # 1 of 5 low: 0.2, not > 0.2
    assert (confidence.words, confidence.low_words, confidence.low_word_share) == (5, 1, 0.2)
    assert confidence.unsure is False and confidence.reasons == ()


def test_many_low_probability_words_or_a_low_mean_logprob_make_it_unsure() -> None:
    assert policy.measure(result([0.9, 0.3, 0.2, 0.95]), THRESHOLDS).reasons == ("low_word_share:0.50",)
    assert policy.measure(result([0.9, 0.9], avg_logprob=-1.2), THRESHOLDS).reasons == ("mean_logprob:-1.20",)
    empty = policy.measure(result([], avg_logprob=None), THRESHOLDS)
    assert empty.unsure and empty.reasons == ("no_words",) and empty.low_word_share == 1.0


def test_thresholds_are_settings_not_constants() -> None:
    strict = policy.Thresholds(word_probability=0.95, word_share=0.1, mean_logprob=-0.2)
    assert policy.measure(result([0.9, 0.9, 0.99]), strict).reasons == (
        "low_word_share:0.67",
        "mean_logprob:-0.30",
    )


@pytest.mark.parametrize(
    ("project", "detected", "probability", "flag"),
    [
        ("en", "es", 0.9, "language_mismatch:es!=en"),
        ("es", "en", 0.92, "language_mismatch:en!=es"),
        ("es", "es", 0.4, None),
        ("en-GB", "en", 0.9, None),
        ("de", "lv", 0.25, None),  # a guess, as base makes on espeak-ng's German
        ("", "es", 0.9, None),
    ],
)
def test_language_mismatch_flag(project: str, detected: str, probability: float, flag: str | None) -> None:
    assert policy.language_flag(project, detected, probability) == flag


def test_language_flag_reads_as_the_issue_says() -> None:
    assert policy.describe_language_flag("language_mismatch:es!=en") == "spoke es in a project set to en"


def test_cascade_keeps_the_stronger_transcript_when_at_least_as_sure_and_records_both() -> None:
    first, second = result([0.9, 0.2, 0.3], model="tiny.en"), result([0.9, 0.8, 0.3], model="base")
    decision = policy.choose(
        first, policy.measure(first, THRESHOLDS), second, policy.measure(second, THRESHOLDS)
    )
    assert decision.keep_second is True
    assert decision.provenance["kept"] == "base"
    assert decision.provenance["first"]["model"] == "tiny.en"
    assert decision.provenance["escalation"]["text"] == second.text
    assert decision.provenance["first"]["confidence"]["low_words"] == 2


def test_cascade_keeps_the_first_pass_when_the_escalation_is_less_sure_or_empty() -> None:
    first, worse, empty = (
        result([0.9, 0.4, 0.9]),
        result([0.2, 0.3, 0.9], model="base"),
        result([], model="base"),
    )
    measured = policy.measure(first, THRESHOLDS)
    less_sure = policy.choose(first, measured, worse, policy.measure(worse, THRESHOLDS))
    assert (less_sure.keep_second, less_sure.reason) == (False, "escalation was less sure")
    heard_nothing = policy.choose(first, measured, empty, policy.measure(empty, THRESHOLDS))
    assert (heard_nothing.keep_second, heard_nothing.provenance["kept"]) == (False, "tiny.en")
