"""Flags for transcripts that are probably wrong, so a reviewer looks before a caption is trusted.

Whisper fails in recognisable ways: text invented over silence or noise, a phrase looping until the
window ends, or nothing at all. Each check names one symptom; the worker stores the list in
`Transcript.flags`. Thresholds follow Whisper's own fallback rules (compression ratio 2.4, average
log-probability -1, no-speech probability 0.6) and human speaking rates (about 2-3 words a second;
above 5 is beyond fast speech).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from transcribe.engines.base import TranscriptResult


@dataclass(frozen=True)
class GuardThresholds:
    max_words_per_second: float = 5.0  # over the time Whisper says speech lasted
    min_words_per_second: float = 0.3  # over the whole recording, once it is long enough to judge
    min_seconds_for_low_rate: float = 10.0
    max_compression_ratio: float = 2.4
    max_ngram_repeats: int = 4  # the same 1-4 word phrase this many times in a row
    min_avg_logprob: float = -1.0
    max_no_speech_prob: float = 0.6


DEFAULT_THRESHOLDS = GuardThresholds()


def plausibility_flags(
    result: TranscriptResult, thresholds: GuardThresholds = DEFAULT_THRESHOLDS
) -> list[str]:
    """Names of the implausible traits of `result`; an empty list means nothing looks wrong."""
    words = _words(result.text)
    if not words:
        return ["empty"]
    flags: list[str] = []
    speech_seconds = sum(max(s.end - s.start, 0.0) for s in result.segments) or result.audio_seconds
    if len(words) / max(speech_seconds, 1.0) > thresholds.max_words_per_second:
        flags.append("words_per_second_high")
    if (
        result.audio_seconds >= thresholds.min_seconds_for_low_rate
        and len(words) / result.audio_seconds < thresholds.min_words_per_second
    ):
        flags.append("words_per_second_low")
    if _is_repetitive(result, words, thresholds):
        flags.append("repetition")
    if result.avg_logprob is not None and result.avg_logprob < thresholds.min_avg_logprob:
        flags.append("low_confidence")
    if _no_speech_prob(result) > thresholds.max_no_speech_prob:
        flags.append("no_speech")
    return flags


def compression_ratio(text: str) -> float:
    """gzip's ratio as Whisper computes it: looping text compresses far better than speech."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def max_consecutive_repeats(words: list[str], max_n: int = 4) -> int:
    """The most times any phrase of 1..max_n words occurs back to back ("the the the" -> 3)."""
    best = 1 if words else 0
    for n in range(1, max_n + 1):
        for start in range(n):
            run, previous = 1, None
            for i in range(start, len(words) - n + 1, n):
                phrase = words[i : i + n]
                run = run + 1 if phrase == previous else 1
                previous = phrase
                best = max(best, run)
    return best


def _is_repetitive(result: TranscriptResult, words: list[str], thresholds: GuardThresholds) -> bool:
    if max_consecutive_repeats(words) >= thresholds.max_ngram_repeats:
        return True
    # Short texts compress poorly whatever they say; judge the ratio only on enough text.
    if len(result.text) >= 200 and compression_ratio(result.text) > thresholds.max_compression_ratio:
        return True
    return any(
        s.compression_ratio is not None and s.compression_ratio > thresholds.max_compression_ratio
        for s in result.segments
        if len(s.text) >= 100
    )


def _no_speech_prob(result: TranscriptResult) -> float:
    pairs = [
        (s.no_speech_prob, max(s.end - s.start, 0.01))
        for s in result.segments
        if s.no_speech_prob is not None
    ]
    if not pairs:
        return 0.0
    return sum(p * w for p, w in pairs) / sum(w for _, w in pairs)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())
