"""Triage: which captions a lead should look at first.

The rules cleaner scores every caption faithful to its transcript, so a take Whisper misheard looks
perfect. Whisper's own word probabilities say how sure it was: a take with many unsure words, or a low
mean word probability, is flagged `unsure_recognition`; quiet and mostly silent takes (intake figures)
are flagged too, and so are pointing takes whose spoken counts disagree with their points
(`count_mismatch`, which the transcribe stage records in the take's `meta["qc_flags"]`). The flags and
a score (more and worse problems score higher) sort the review queue by "needs attention", worst
first. Thresholds are settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.services.review import QueueFilter, caption_filters, get_caption, queue_item
from db.models import Caption, Image, Recording, Transcript, User
from db.settings import Settings

ATTENTION_FLAGS = ("unsure_recognition", "quiet", "mostly_silent", "count_mismatch")
# The attention sort reads word probabilities of this many candidates at most (oldest first); a larger
# queue is narrowed by its filters first.
MAX_CANDIDATES = 5000


@dataclass(frozen=True)
class WordConfidence:
    words: int  # words with a probability
    unsure: int  # of which under the unsure threshold
    mean_probability: float | None

    @property
    def unsure_share(self) -> float:
        return self.unsure / self.words if self.words else 0.0


def word_confidence(words: list[dict[str, Any]] | None, low_probability: float) -> WordConfidence:
    """How sure the recogniser was of a transcript's words."""
    probabilities = [
        float(w["probability"])
        for w in words or []
        if isinstance(w, dict)
        and isinstance(w.get("probability"), int | float)
        and str(w.get("word", "")).strip()
    ]
    if not probabilities:
        return WordConfidence(0, 0, None)
    unsure = sum(p < low_probability for p in probabilities)
    return WordConfidence(len(probabilities), unsure, sum(probabilities) / len(probabilities))


def take_flags(
    loudness_dbfs: float | None,
    silence_fraction: float | None,
    confidence: WordConfidence,
    settings: Settings,
    recorded_flags: Sequence[str] = (),
) -> list[str]:
    """The attention flags of one take, from its intake figures, its transcript's word probabilities and
    the flags recorded on it (`meta["qc_flags"]`: count_mismatch)."""
    flags: list[str] = []
    mean = confidence.mean_probability
    if confidence.unsure_share > settings.unsure_word_share or (
        mean is not None and mean < settings.min_mean_word_probability
    ):
        flags.append("unsure_recognition")
    if loudness_dbfs is not None and loudness_dbfs < settings.quiet_loudness_dbfs:
        flags.append("quiet")
    if silence_fraction is not None and silence_fraction > settings.mostly_silent_fraction:
        flags.append("mostly_silent")
    if "count_mismatch" in recorded_flags:  # a spoken count disagrees with the points linked to it
        flags.append("count_mismatch")
    return flags


def attention_score(
    flags: list[str], caption_flags: list[Any], faithfulness: float | None, confidence: WordConfidence
) -> float:
    """Higher needs attention sooner: each flag counts, then how unfaithful and how unsure."""
    score = 2.0 * len(flags) + 1.0 * len(caption_flags or [])
    if faithfulness is not None:
        score += 1.0 - faithfulness
    score += confidence.unsure_share
    if confidence.mean_probability is not None:
        score += 1.0 - confidence.mean_probability
    return round(score, 4)


def _summary(
    settings: Settings,
    caption: Caption,
    recording: Recording | None,
    words: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    confidence = word_confidence(words, settings.unsure_word_probability)
    flags = take_flags(
        recording.loudness_dbfs if recording else None,
        recording.silence_fraction if recording else None,
        confidence,
        settings,
        (recording.meta or {}).get("qc_flags", []) if recording else (),
    )
    return {
        "flags": flags,
        "score": attention_score(flags, caption.flags, caption.faithfulness, confidence),
        "unsure_words": confidence.unsure,
        "unsure_share": round(confidence.unsure_share, 4),
        "mean_probability": (
            None if confidence.mean_probability is None else round(confidence.mean_probability, 4)
        ),
        "unsure_below": settings.unsure_word_probability,
    }


def caption_attention(session: Session, settings: Settings, caption_id: int) -> dict[str, Any]:
    """One caption's attention flags and score, and the probability under which a word is unsure."""
    caption = get_caption(session, caption_id)
    recording = session.get(Recording, caption.recording_id) if caption.recording_id else None
    words = (
        session.scalar(select(Transcript.words).where(Transcript.id == caption.transcript_id))
        if caption.transcript_id
        else None
    )
    return {"caption_id": caption.id, **_summary(settings, caption, recording, words)}


def attention_queue(session: Session, settings: Settings, f: QueueFilter, offset: int = 0) -> dict[str, Any]:
    """The review queue worst first: like review.list_queue's page, each item with its `attention`."""
    limit = max(1, min(f.limit, 500))
    offset = max(0, offset)
    rows = session.execute(
        select(Caption, Image.project_id, Recording, User.name, Transcript.words)
        .join(Image, Image.id == Caption.image_id)
        .outerjoin(Recording, Recording.id == Caption.recording_id)
        .outerjoin(User, User.id == Recording.user_id)
        .outerjoin(Transcript, Transcript.id == Caption.transcript_id)
        .where(*caption_filters(f))
        .order_by(Caption.id)
        .limit(MAX_CANDIDATES)
    ).all()
    ranked = sorted(
        (
            (_summary(settings, caption, recording, words), caption, project_id, name)
            for caption, project_id, recording, name, words in rows
        ),
        key=lambda row: (-row[0]["score"], row[1].id),
    )
    page = ranked[offset : offset + limit]
    items = [
        {**queue_item(caption, project_id, name), "attention": summary}
        for summary, caption, project_id, name in page
    ]
    more = offset + limit < len(ranked)
    return {"items": items, "total": len(ranked), "next_offset": offset + limit if more else None}
