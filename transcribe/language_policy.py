"""Which takes a model may transcribe, how sure a transcript is, and which of two transcripts to keep.

Pure functions over plain values, so the rules are tested without a database or a model, and the
transcription stage only calls them:

- `claimable_languages(model)`: an English-only model (`*.en`) takes only English projects' takes; the
  rest wait for a worker with a multilingual model (`left_behind_message` says which to run).
- `measure(result, thresholds)`: the share of low-probability words and the mean log-probability of a
  transcript, and whether they make it unsure.
- `language_flag(project, detected)`: "spoke es in an en project".
- `choose(first, second)`: the confidence cascade's decision between a first-pass transcript and the
  stronger model's, with the provenance of both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from transcribe.engines.base import TranscriptResult
from transcribe.models import CATALOG

ENGLISH = "en"
MULTILINGUAL_SUGGESTION = "base"  # the multilingual model `voicecap models install` offers


def base_code(language: str | None) -> str:
    """ "en-GB" -> "en"; empty stays empty (no language known)."""
    return (language or "").replace("_", "-").split("-")[0].lower()


def is_english_only(model: str) -> bool:
    """A catalog model says so itself; any other name or path follows Whisper's `*.en` naming."""
    if model in CATALOG:
        return not CATALOG[model].multilingual
    return Path(model.rstrip("/")).name.removesuffix(".pt").endswith(".en")


def claimable_languages(model: str) -> tuple[str, ...] | None:
    """The project languages a worker with this model may claim; None means any."""
    return (ENGLISH,) if is_english_only(model) else None


def may_transcribe(model: str, project_language: str | None) -> bool:
    allowed = claimable_languages(model)
    return allowed is None or base_code(project_language or ENGLISH) in allowed


def left_behind_message(model: str, waiting: Mapping[str, int]) -> str:
    """What a draining English-only worker says when only other languages' takes are left."""
    described = ", ".join(f"{count} in {language}" for language, count in sorted(waiting.items()))
    return (
        f"{sum(waiting.values())} take(s) are left that the English-only model {model} must not "
        f"transcribe ({described}). Run a worker with a multilingual model: "
        f"`voicecap models install {MULTILINGUAL_SUGGESTION}`, then "
        f"`VOICECAP_MODEL={MULTILINGUAL_SUGGESTION} voicecap transcribe`."
    )


@dataclass(frozen=True)
class Thresholds:
    """When a transcript counts as unsure (settings: unsure_word_probability, unsure_word_share,
    unsure_mean_logprob)."""

    word_probability: float = 0.5  # a word below this probability is a low-probability word
    word_share: float = 0.2  # unsure when more than this share of the words are low-probability
    mean_logprob: float = -0.8  # unsure when the mean log-probability is below this


@dataclass(frozen=True)
class Confidence:
    words: int
    low_words: int
    low_word_share: float
    mean_logprob: float | None
    unsure: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def measure(result: TranscriptResult, thresholds: Thresholds) -> Confidence:
    """How sure the model was of a transcript. No words at all is unsure: there is nothing to keep."""
    probabilities = [word.probability for segment in result.segments for word in segment.words]
    low = sum(1 for p in probabilities if p < thresholds.word_probability)
    share = low / len(probabilities) if probabilities else 1.0
    reasons: list[str] = []
    if not probabilities:
        reasons.append("no_words")
    elif share > thresholds.word_share:
        reasons.append(f"low_word_share:{share:.2f}")
    if result.avg_logprob is not None and result.avg_logprob < thresholds.mean_logprob:
        reasons.append(f"mean_logprob:{result.avg_logprob:.2f}")
    return Confidence(
        words=len(probabilities),
        low_words=low,
        low_word_share=round(share, 4),
        mean_logprob=result.avg_logprob,
        unsure=bool(reasons),
        reasons=tuple(reasons),
    )


# Below this probability a detected language is a guess: on espeak-ng's German base's best guess was
# "de" at 0.38 (then Latvian at 0.25), while English speech comes out "en" at 0.67-0.92.
MISMATCH_MIN_PROBABILITY = 0.5


def language_flag(
    project_language: str | None, detected: str | None, probability: float | None = 1.0
) -> str | None:
    """ "language_mismatch:es!=en" when the model heard, with some confidence, another language than
    the project's."""
    expected, heard = base_code(project_language), base_code(detected)
    if not expected or not heard or expected == heard:
        return None
    if probability is not None and probability < MISMATCH_MIN_PROBABILITY:
        return None
    return f"language_mismatch:{heard}!={expected}"


def describe_language_flag(flag: str) -> str:
    """ "language_mismatch:es!=en" -> "spoke es in a project set to en"."""
    heard, expected = flag.removeprefix("language_mismatch:").split("!=")
    return f"spoke {heard} in a project set to {expected}"


@dataclass(frozen=True)
class CascadeDecision:
    keep_second: bool
    reason: str
    provenance: dict[str, object]  # both transcripts' model, text and confidence, and which was kept


def choose(
    first: TranscriptResult,
    first_confidence: Confidence,
    second: TranscriptResult,
    second_confidence: Confidence,
) -> CascadeDecision:
    """Keep the stronger model's transcript unless it is the less sure of the two.

    It is stronger by construction (the escalation model), so it wins ties; the first pass stays only
    when it has words and the second has a larger share of low-probability words, or none at all."""
    if second_confidence.words == 0 and first_confidence.words > 0:
        keep_second, reason = False, "escalation heard no words"
    elif second_confidence.low_word_share > first_confidence.low_word_share:
        keep_second, reason = False, "escalation was less sure"
    else:
        keep_second, reason = True, "escalation was at least as sure"
    provenance: dict[str, object] = {
        "kept": second.model if keep_second else first.model,
        "reason": reason,
        "first": _summary(first, first_confidence),
        "escalation": _summary(second, second_confidence),
    }
    return CascadeDecision(keep_second, reason, provenance)


def _summary(result: TranscriptResult, confidence: Confidence) -> dict[str, object]:
    return {
        "model": result.model,
        "text": result.text,
        "language": result.language,
        "processing_seconds": result.processing_seconds,
        "confidence": confidence.as_dict(),
    }
