"""Caption rows from cleaner results: provenance, faithfulness flags and the dedupe key.

Shared by the clean processor (one caption per recording) and the merge sweep (one per image). The
dedupe key names the transcript(s), cleaner, prompt version and model, so the same job done twice
stores one caption, and a new prompt version or model adds a caption beside the old ones instead of
overwriting them. A merged caption has no single transcript: the ids of the transcripts it was written
from are in its key ("merged:<image>:<t1>+<t2>:<cleaner>:<prompt>:<model>").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from db.models import Caption, CaptionKind, CaptionStatus
from transcribe.clean.base import Cleaner, CleanResult
from transcribe.clean.faithfulness import check
from transcribe.clean.languages import base_language

DEDUPE_KEY_LENGTH = 300  # Caption.dedupe_key is String(300)


def _fit(key: str, tail: str) -> str:
    """Append `tail` (a model name can be a long path), hashing it when the key would not fit."""
    full = f"{key}:{tail}"
    if len(full) <= DEDUPE_KEY_LENGTH:
        return full
    return f"{key}:sha1-{hashlib.sha1(tail.encode()).hexdigest()}"


def single_key(transcript_id: int, result: CleanResult) -> str:
    return _fit(f"single:{transcript_id}:{result.cleaner}:{result.prompt_version}", result.model)


def merged_key(image_id: int, transcript_ids: Sequence[int], cleaner: Cleaner) -> str:
    ids = "+".join(str(i) for i in sorted(transcript_ids))
    if len(ids) > 100:
        ids = "sha1-" + hashlib.sha1(ids.encode()).hexdigest()
    return _fit(f"merged:{image_id}:{ids}:{cleaner.name}:{cleaner.merge_prompt_version}", cleaner.model)


def translation_flag(spoken: str | None, wanted: str | None, cleaner: Cleaner) -> str | None:
    """When a project asks for captions in another language than the one spoken: "translated:ar->en"
    (the cleaner wrote it in the language asked for) or "untranslated:ar->en" (it cannot translate,
    so the caption keeps the words as spoken). None when no other language is asked for."""
    if not wanted or base_language(wanted) == base_language(spoken):
        return None
    done = "translated" if cleaner.can_translate else "untranslated"
    return f"{done}:{base_language(spoken)}->{base_language(wanted)}"


def build_caption(
    result: CleanResult,
    *,
    image_id: int,
    transcripts: Sequence[str],
    threshold: float,
    kind: CaptionKind,
    dedupe_key: str,
    recording_id: int | None = None,
    transcript_id: int | None = None,
    language: str | None = None,
    translation: str | None = None,
) -> Caption:
    """A Caption row (not added to any session) with its faithfulness report filled in.

    `translation` is translation_flag's answer. A translated caption is flagged for a reviewer and
    gets no faithfulness figure: the guard compares words, and words do not match across languages."""
    flags: list[str] = []
    faithfulness: float | None = None
    unsupported: list[str] = []
    flagged = False
    if translation is None or not translation.startswith("translated:"):
        report = check(result.text, list(transcripts), threshold, language=language)
        flags += report.flags
        if report.missing_numbers:
            flags.append("numbers_lost:" + ",".join(report.missing_numbers))
        if "low_coverage" in report.flags:
            flags.append(f"coverage:{report.coverage:.2f}")
        faithfulness, unsupported, flagged = report.score, report.unsupported_words, report.flagged
    if translation is not None:
        flags.append(translation)
        flagged = True
    return Caption(
        image_id=image_id,
        recording_id=recording_id,
        transcript_id=transcript_id,
        kind=kind,
        dedupe_key=dedupe_key,
        text=result.text,
        cleaner=result.cleaner,
        model=result.model,
        prompt_version=result.prompt_version,
        word_count=len(result.text.split()),
        faithfulness=faithfulness,
        unsupported_words=unsupported,
        flags=flags,
        flagged=flagged,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        status=CaptionStatus.pending,
    )
