"""Review: the data leads' queue of captions and their decisions (approve, edit, reject, send back).

Every decision is a Review row (who, when, why). Nothing is overwritten: an edit adds a Caption of kind
`edited` whose parent is marked superseded; a send-back bumps the recording's revision and returns it to
the queue (the workers then write a new transcript / caption), leaving the old rows as history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.services.image_names import public_source
from db.models import (
    Caption,
    CaptionKind,
    CaptionStatus,
    Image,
    Project,
    Recording,
    RecordingStatus,
    Review,
    ReviewDecision,
    Transcript,
    User,
    utcnow,
)
from db.queue import fresh_budget
from db.settings import get_settings
from transcribe.clean.faithfulness import check
from transcribe.stages.pointing import align_recording

CAPTION_STATES = tuple(CaptionStatus)
# A caption still being worked on by a worker cannot be sent back again until it lands.
BUSY = {
    RecordingStatus.uploaded,
    RecordingStatus.transcribing,
    RecordingStatus.transcribed,
    RecordingStatus.cleaning,
}
MAX_REASON = 2000
MAX_CAPTION_CHARS = 20000
MAX_RECORDING_IDS = 5000  # bound on a QC filter's takes (bound parameters per statement)


@dataclass
class QueueFilter:
    project_id: int | None = None
    annotator_id: int | None = None
    # "flagged" = any faithfulness flag; any other value = captions carrying that flag name.
    flag: str | None = None
    status: str | None = CaptionStatus.pending  # None = every state
    after_id: int | None = None  # keyset paging: captions with a larger id
    limit: int = 50
    recording_ids: list[int] | None = None  # only captions of these takes (a QC flag's takes)


@dataclass
class Decision:
    review: Review
    caption: Caption  # the caption decided on
    new_caption: Caption | None = None  # the edited caption, for an edit


def caption_filters(f: QueueFilter) -> list[Any]:
    conditions: list[Any] = []
    if f.status is not None:
        if f.status not in CAPTION_STATES:
            raise InvalidInput(f"Unknown state {f.status!r}; use {', '.join(CAPTION_STATES)} or all.")
        conditions.append(Caption.status == f.status)
    if f.project_id is not None:
        conditions.append(Image.project_id == f.project_id)
    if f.annotator_id is not None:
        conditions.append(Recording.user_id == f.annotator_id)
    if f.recording_ids is not None:
        conditions.append(Caption.recording_id.in_(f.recording_ids[:MAX_RECORDING_IDS]))
    if f.flag:
        if f.flag == "flagged":
            conditions.append(Caption.flagged.is_(True))
        elif f.flag == "unflagged":
            conditions.append(Caption.flagged.is_(False))
        else:
            # flags is a JSON list of identifiers; its text form holds each one quoted, on both backends.
            needle = f.flag.replace("\\", "").replace('"', "").replace("%", "").replace("_", "\\_")
            conditions.append(cast(Caption.flags, String).like(f'%"{needle}"%', escape="\\"))
    return conditions


def queue_item(caption: Caption, project_id: int, annotator: str | None) -> dict[str, Any]:
    """One caption as the review queue lists it."""
    return {
        "id": caption.id,
        "image_id": caption.image_id,
        "project_id": project_id,
        "recording_id": caption.recording_id,
        "annotator": annotator,
        "kind": caption.kind.value,
        "status": caption.status,
        "flagged": caption.flagged,
        "flags": caption.flags,
        "faithfulness": caption.faithfulness,
        "word_count": caption.word_count,
        "preview": caption.text[:140],
        "created_at": caption.created_at.isoformat(),
    }


def list_queue(session: Session, f: QueueFilter) -> dict[str, Any]:
    """One page of the review queue, oldest first, and how many match in all."""
    limit = max(1, min(f.limit, 500))
    base = (
        select(Caption, Image, Recording, User)
        .join(Image, Image.id == Caption.image_id)
        .outerjoin(Recording, Recording.id == Caption.recording_id)
        .outerjoin(User, User.id == Recording.user_id)
        .where(*caption_filters(f))
    )
    total = session.scalar(select(func.count()).select_from(base.with_only_columns(Caption.id).subquery()))
    page = base.order_by(Caption.id).limit(limit)
    if f.after_id is not None:
        page = page.where(Caption.id > f.after_id)
    items = [
        queue_item(caption, image.project_id, user.name if user else None)
        for caption, image, _recording, user in session.execute(page)
    ]
    return {
        "items": items,
        "total": int(total or 0),
        "next_after": items[-1]["id"] if len(items) == limit else None,
    }


def get_caption(session: Session, caption_id: int, *, lock: bool = False) -> Caption:
    caption = session.get(Caption, caption_id, with_for_update=lock or None)
    if caption is None:
        raise NotFound(f"No caption {caption_id}.")
    return caption


def transcript_words(transcript: Transcript) -> list[dict[str, Any]]:
    """The transcript's words with their times (for the player's highlight), blank ones left out."""
    words: list[dict[str, Any]] = []
    for word in transcript.words or []:
        text = str(word.get("word", ""))
        if not text.strip():
            continue
        words.append(
            {
                "start": float(word.get("start", 0.0)),
                "end": float(word.get("end", 0.0)),
                "word": text,
                "probability": word.get("probability"),
            }
        )
    return words


def flag_name(flag: Any) -> str:
    """Flags are identifiers, or objects naming one (code/name)."""
    if isinstance(flag, dict):
        return str(flag.get("code") or flag.get("name") or flag)
    return str(flag)


def caption_dict(caption: Caption) -> dict[str, Any]:
    return {
        "id": caption.id,
        "image_id": caption.image_id,
        "recording_id": caption.recording_id,
        "transcript_id": caption.transcript_id,
        "parent_id": caption.parent_id,
        "kind": caption.kind.value,
        "text": caption.text,
        "cleaner": caption.cleaner,
        "model": caption.model,
        "prompt_version": caption.prompt_version,
        "word_count": caption.word_count,
        "faithfulness": caption.faithfulness,
        "unsupported_words": caption.unsupported_words,
        "flags": caption.flags,
        "flagged": caption.flagged,
        "status": caption.status,
        "created_by": caption.created_by,
        "created_at": caption.created_at.isoformat(),
    }


def review_dict(review: Review, reviewer: str | None) -> dict[str, Any]:
    return {
        "id": review.id,
        "caption_id": review.caption_id,
        "decision": review.decision.value,
        "reason": review.reason,
        "reviewer": reviewer,
        "source": review.source,
        "created_at": review.created_at.isoformat(),
    }


def _history(session: Session, caption: Caption) -> list[dict[str, Any]]:
    """Every caption of the same recording (or image, for merged captions) with its reviews, oldest first."""
    scope = (
        Caption.recording_id == caption.recording_id
        if caption.recording_id is not None
        else Caption.image_id == caption.image_id
    )
    captions = list(session.scalars(select(Caption).where(scope).order_by(Caption.id)))
    reviews = session.execute(
        select(Review, User.name)
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(Review.caption_id.in_([c.id for c in captions]))
        .order_by(Review.id)
    ).all()
    by_caption: dict[int, list[dict[str, Any]]] = {}
    for review, name in reviews:
        by_caption.setdefault(review.caption_id, []).append(review_dict(review, name))
    return [
        {
            "id": c.id,
            "kind": c.kind.value,
            "status": c.status,
            "parent_id": c.parent_id,
            "text": c.text,
            "transcript_id": c.transcript_id,
            "created_at": c.created_at.isoformat(),
            "reviews": by_caption.get(c.id, []),
        }
        for c in captions
    ]


def caption_detail(session: Session, caption_id: int) -> dict[str, Any]:
    """All a reviewer needs on one screen: caption, transcript with word times, recording QC, history."""
    caption = get_caption(session, caption_id)
    image = session.get(Image, caption.image_id)
    assert image is not None
    project = session.get(Project, image.project_id)
    detail: dict[str, Any] = {
        "caption": caption_dict(caption),
        "image": {
            "id": image.id,
            "width": image.width,
            "height": image.height,
            "source": public_source(image.source),
            "project_id": image.project_id,
            "project": project.name if project else None,
            "mode": str(project.mode) if project else "describe",  # narrate/point: the page draws points
        },
        "recording": None,
        "transcript": None,
        "history": _history(session, caption),
    }
    transcript = session.get(Transcript, caption.transcript_id) if caption.transcript_id else None
    if transcript is not None:
        detail["transcript"] = {
            "id": transcript.id,
            "revision": transcript.revision,
            "text": transcript.text,
            "words": transcript_words(transcript),
            "word_count": transcript.word_count,
            "words_per_minute": transcript.words_per_minute,
            "flags": transcript.flags,
            "engine": transcript.engine,
            "model": transcript.model,
        }
    recording = session.get(Recording, caption.recording_id) if caption.recording_id else None
    if recording is not None:
        annotator = session.get(User, recording.user_id)
        detail["recording"] = {
            "id": recording.id,
            "annotator": annotator.name if annotator else None,
            "annotator_id": recording.user_id,
            "duration_seconds": recording.duration_seconds,
            "loudness_dbfs": recording.loudness_dbfs,
            "silence_fraction": recording.silence_fraction,
            "content_type": recording.content_type,
            "status": recording.status.value,
            "revision": recording.revision,
            "audio_url": f"/api/recordings/{recording.id}/audio",
        }
    return detail


def _existing(session: Session, external_id: str | None) -> Review | None:
    if external_id is None:
        return None
    return session.scalar(select(Review).where(Review.external_id == external_id))


def _set_recording_rejected(session: Session, caption: Caption, rejected: bool) -> None:
    """A rejected take no longer counts toward its image, so the image is offered to annotators again."""
    if caption.kind is CaptionKind.merged or caption.recording_id is None:
        return
    recording = session.get(Recording, caption.recording_id)
    image = session.get(Image, caption.image_id)
    if recording is None or image is None:
        return
    if rejected and recording.status is RecordingStatus.captioned:
        recording.status = RecordingStatus.rejected
        image.done_count = max(0, image.done_count - 1)
    elif not rejected and recording.status is RecordingStatus.rejected:
        recording.status = RecordingStatus.captioned
        image.done_count += 1


def _send_back(session: Session, caption: Caption, to: RecordingStatus) -> None:
    if caption.recording_id is None:
        raise InvalidInput("A merged caption has no single recording to send back; send back its recordings.")
    recording = session.get(Recording, caption.recording_id, with_for_update=True)
    assert recording is not None
    if recording.status in BUSY:
        raise Conflict(
            f"Recording {recording.id} is already being reworked ({recording.status.value}); wait for it."
        )
    latest = session.scalar(
        select(Transcript).where(Transcript.recording_id == recording.id).order_by(Transcript.revision.desc())
    )
    if to is RecordingStatus.transcribed and latest is None:
        raise Conflict(f"Recording {recording.id} has no transcript to clean again; re-transcribe it.")
    if recording.status is RecordingStatus.rejected:
        image = session.get(Image, caption.image_id)
        if image is not None:
            image.done_count += 1  # back in the pipeline: it counts toward its image again
    recording.revision = max(recording.revision, latest.revision if latest else 0) + 1
    if to is RecordingStatus.transcribed:
        assert latest is not None
        # The clean stage reads the transcript of the recording's current revision, and a caption is
        # keyed by its transcript: a copy under the new revision makes the cleaner write a new caption
        # (same transcript text) while the old transcript and caption stay as they were.
        session.add(_transcript_copy(latest, recording.revision))
        session.flush()
        align_recording(session, recording.id, get_settings())  # a transcript never lacks its alignment
    recording.status = to
    fresh_budget(recording)
    recording.last_error = None
    recording.claimed_by = None
    recording.lease_until = None
    recording.next_attempt_at = utcnow()
    # Captions written from the old revision are history now.
    for other in session.scalars(
        select(Caption).where(Caption.recording_id == recording.id, Caption.status == CaptionStatus.pending)
    ):
        other.status = CaptionStatus.superseded
    caption.status = CaptionStatus.superseded


def _transcript_copy(transcript: Transcript, revision: int) -> Transcript:
    return Transcript(
        recording_id=transcript.recording_id,
        revision=revision,
        text=transcript.text,
        language=transcript.language,
        segments=transcript.segments,
        words=transcript.words,
        avg_logprob=transcript.avg_logprob,
        engine=transcript.engine,
        model=transcript.model,
        engine_version=transcript.engine_version,
        audio_seconds=transcript.audio_seconds,
        processing_seconds=0.0,  # nothing was transcribed again
        word_count=transcript.word_count,
        words_per_minute=transcript.words_per_minute,
        flags=transcript.flags,
    )


def _edited_caption(
    session: Session, parent: Caption, text: str, reviewer: User, threshold: float
) -> Caption:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    key = f"edited:{parent.id}:{digest}"
    existing = session.scalar(select(Caption).where(Caption.dedupe_key == key))
    if existing is not None:
        return existing
    # Measured like any caption, so an edit that adds what nobody said is visible in QC and exports;
    # except a translation, whose words cannot be compared with the transcript's (it keeps its flag).
    translated = [flag for flag in parent.flags or [] if str(flag).startswith("translated:")]
    sources = _source_transcripts(session, parent)
    report = check(text, sources, threshold) if sources and not translated else None
    child = Caption(
        image_id=parent.image_id,
        recording_id=parent.recording_id,
        transcript_id=parent.transcript_id,
        parent_id=parent.id,
        kind=CaptionKind.edited,
        dedupe_key=key,
        text=text,
        cleaner="human",
        model="",
        prompt_version=parent.prompt_version,
        word_count=len(text.split()),
        faithfulness=report.score if report else None,
        unsupported_words=report.unsupported_words if report else [],
        flags=list(report.flags) + translated if report else translated,
        flagged=report.flagged if report else False,
        status=CaptionStatus.approved,
        created_by=reviewer.id,
    )
    session.add(child)
    return child


def _source_transcripts(session: Session, caption: Caption) -> list[str]:
    """The transcript(s) a caption was written from: its own, or for a merged caption its image's."""
    if caption.transcript_id is not None:
        transcript = session.get(Transcript, caption.transcript_id)
        return [transcript.text] if transcript is not None else []
    rows = session.execute(
        select(Transcript.text)
        .join(Recording, Recording.id == Transcript.recording_id)
        .where(
            Recording.image_id == caption.image_id,
            Recording.status == RecordingStatus.captioned,
            Transcript.revision == Recording.revision,
        )
    )
    return [text for (text,) in rows]


def decide(
    session: Session,
    caption_id: int,
    reviewer: User | None,
    decision: ReviewDecision | str,
    *,
    text: str | None = None,
    reason: str = "",
    source: str = "web",
    external_id: str | None = None,
    faithfulness_threshold: float | None = None,
) -> Decision:
    """Apply one reviewer decision and store it as a Review row; the caller commits.

    approve: the caption is approved. edit: a new `edited` caption with `text` is approved and the
    original superseded. reject: needs a reason; the take stops counting toward its image.
    retranscribe / reclean: the recording goes back to `uploaded` / `transcribed` with a new revision
    (for reclean, under a copy of its latest transcript).
    A decision carrying an external_id already stored is not applied twice.
    """
    try:
        decision = ReviewDecision(decision)
    except ValueError:
        known = ", ".join(d.value for d in ReviewDecision)
        raise InvalidInput(f"Unknown decision {decision!r}; use one of {known}.") from None
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"A reason is at most {MAX_REASON} characters.")
    already = _existing(session, external_id)
    if already is not None:
        return Decision(review=already, caption=get_caption(session, already.caption_id))

    caption = get_caption(session, caption_id, lock=True)
    if caption.status == CaptionStatus.superseded:
        newer = session.scalar(select(Caption.id).where(Caption.parent_id == caption.id).order_by(Caption.id))
        where = f" by caption {newer}" if newer else " (sent back for rework)"
        raise Conflict(f"Caption {caption.id} was superseded{where}; review the current one.")

    new_caption: Caption | None = None
    if decision is ReviewDecision.approve:
        _set_recording_rejected(session, caption, rejected=False)
        caption.status = CaptionStatus.approved
    elif decision is ReviewDecision.edit:
        new_caption = _edit(session, caption, text, reviewer, faithfulness_threshold)
    elif decision is ReviewDecision.reject:
        if not reason:
            raise InvalidInput("A rejection needs a reason (the annotator and the export see it).")
        _set_recording_rejected(session, caption, rejected=True)
        caption.status = CaptionStatus.rejected
    elif decision is ReviewDecision.retranscribe:
        _send_back(session, caption, RecordingStatus.uploaded)
    else:
        _send_back(session, caption, RecordingStatus.transcribed)

    review = Review(
        caption_id=caption.id,
        reviewer_id=reviewer.id if reviewer else None,
        decision=decision,
        reason=reason,
        source=source,
        external_id=external_id,
    )
    session.add(review)
    session.flush()
    return Decision(review=review, caption=caption, new_caption=new_caption)


def _edit(
    session: Session, caption: Caption, text: str | None, reviewer: User | None, threshold: float | None
) -> Caption:
    """An edit: a new approved caption with `text` (checked for faithfulness); the original superseded."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("An edit needs the new caption text.")
    if len(text) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"A caption is at most {MAX_CAPTION_CHARS} characters.")
    if reviewer is None:
        raise InvalidInput("An edit needs a reviewer.")
    if text == caption.text.strip():
        raise InvalidInput("The text is unchanged; approve the caption instead.")
    _set_recording_rejected(session, caption, rejected=False)
    if threshold is None:
        threshold = get_settings().faithfulness_threshold
    new_caption = _edited_caption(session, caption, text, reviewer, threshold)
    caption.status = CaptionStatus.superseded
    return new_caption


def decision_dict(result: Decision, reviewer: str | None) -> dict[str, Any]:
    return {
        "review": review_dict(result.review, reviewer),
        "caption": {"id": result.caption.id, "status": result.caption.status},
        "new_caption": caption_dict(result.new_caption) if result.new_caption is not None else None,
    }


def queue_choices(session: Session) -> dict[str, Any]:
    """What the queue's filter menus offer: projects, annotators with recordings, flag names in use."""
    projects = [
        {"id": i, "name": n}
        for i, n in session.execute(select(Project.id, Project.name).order_by(Project.name))
    ]
    annotators = [
        {"id": i, "name": n}
        for i, n in session.execute(
            select(User.id, User.name)
            .where(User.id.in_(select(Recording.user_id).distinct()))
            .order_by(User.name)
        )
    ]
    flags: set[str] = set()
    # JSON has no equality on PostgreSQL, so no DISTINCT: a bounded sample of flagged rows is enough.
    for (values,) in session.execute(select(Caption.flags).where(Caption.flagged.is_(True)).limit(2000)):
        flags.update(flag_name(v) for v in values or [])
    return {
        "projects": projects,
        "annotators": annotators,
        "flags": sorted(flags),
        "states": [str(s) for s in CAPTION_STATES],
    }
