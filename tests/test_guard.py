"""The plausibility guard on transcripts shaped like Whisper's real failures (and a normal one)."""

from __future__ import annotations

import pytest

from transcribe.engines.base import Segment, TranscriptResult, Word, build_result
from transcribe.guard import GuardThresholds, compression_ratio, max_consecutive_repeats, plausibility_flags

DESCRIPTION = (
    "In this photo there are three red boats on a calm lake. Behind them, two tall green trees stand "
    "next to a small white house with a blue door."
)


def _result(
    texts_and_spans: list[tuple[str, float, float]],
    *,
    audio_seconds: float,
    avg_logprob: float = -0.3,
    no_speech_prob: float = 0.01,
) -> TranscriptResult:
    segments = [
        Segment(start, end, text, avg_logprob, no_speech_prob, [], compression_ratio(text))
        for text, start, end in texts_and_spans
    ]
    return build_result(
        segments,
        language="en",
        engine="test",
        model="tiny.en",
        engine_version="0",
        audio_seconds=audio_seconds,
        processing_seconds=1.0,
    )


def test_a_normal_description_has_no_flags() -> None:
    result = _result([(DESCRIPTION, 0.5, 10.5)], audio_seconds=12.0)
    assert plausibility_flags(result) == []


def test_empty_text_is_flagged_alone() -> None:
    assert plausibility_flags(_result([], audio_seconds=30.0)) == ["empty"]
    assert plausibility_flags(_result([("  ", 0.0, 1.0)], audio_seconds=30.0)) == ["empty"]


def test_a_looping_phrase_is_repetition() -> None:
    loop = "and the boat is red " * 12
    result = _result([(DESCRIPTION, 0.0, 10.0), (loop, 10.0, 30.0)], audio_seconds=30.0)
    assert "repetition" in plausibility_flags(result)


def test_a_stutter_of_one_word_four_times_is_repetition() -> None:
    result = _result([("there are three three three three boats", 0.0, 4.0)], audio_seconds=5.0)
    assert plausibility_flags(result) == ["repetition"]


def test_too_many_words_for_the_time_is_flagged() -> None:
    # 26 words said in 2 s: 13 words/s, far above any human rate.
    result = _result([(DESCRIPTION, 0.0, 2.0)], audio_seconds=60.0)
    assert "words_per_second_high" in plausibility_flags(result)


def test_a_long_recording_with_a_few_words_is_flagged() -> None:
    result = _result([("a red boat", 1.0, 2.5)], audio_seconds=60.0)
    assert plausibility_flags(result) == ["words_per_second_low"]
    # A short clip with few words is fine: the rate is not judged under 10 s.
    assert plausibility_flags(_result([("a red boat", 1.0, 2.5)], audio_seconds=4.0)) == []


def test_low_confidence_and_no_speech_are_flagged() -> None:
    unsure = _result([(DESCRIPTION, 0.0, 10.0)], audio_seconds=10.0, avg_logprob=-1.4)
    assert plausibility_flags(unsure) == ["low_confidence"]
    ghost = _result([("Thank you.", 0.0, 2.0)], audio_seconds=3.0, no_speech_prob=0.93)
    assert plausibility_flags(ghost) == ["no_speech"]


def test_thresholds_can_be_tightened() -> None:
    result = _result([(DESCRIPTION, 0.5, 10.5)], audio_seconds=12.0)
    strict = GuardThresholds(max_words_per_second=2.0)
    assert plausibility_flags(result, strict) == ["words_per_second_high"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("the red boat", 1),
        ("the the the", 3),
        ("red boat red boat red boat", 3),
        ("one two three one two three", 2),
        ("x a b c d a b c d a b c d", 3),
    ],
)
def test_max_consecutive_repeats(text: str, expected: int) -> None:
    assert max_consecutive_repeats(text.split()) == expected


def test_compression_ratio_separates_loops_from_speech() -> None:
    assert compression_ratio(DESCRIPTION) < 2.0
    assert compression_ratio("the boat is red. " * 20) > 2.4
    assert compression_ratio("") == 0.0


def test_segments_json_rounds_and_words_json_holds_the_words() -> None:
    word = Word(0.123456, 0.45678, "red", 0.987654)
    segment = Segment(0.0, 1.23456, "red", -0.2, 0.01, [word], 1.0)
    result = build_result(
        [segment],
        language="en",
        engine="t",
        model="m",
        engine_version="0",
        audio_seconds=2.0,
        processing_seconds=0.5,
    )
    stored = result.segments_json()
    assert stored[0]["end"] == 1.235
    assert "words" not in stored[0] and stored[0]["no_speech_prob"] == 0.01
    assert result.words_json() == [{"start": 0.123, "end": 0.457, "word": "red", "probability": 0.988}]
    assert result.word_count == 1 and result.words_per_minute == 30.0 and result.real_time_factor == 0.25
