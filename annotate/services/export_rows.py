"""The rows of a dataset export, read in windows of images so memory stays flat however large the project.

Images are read in id order by keyset paging (`id > last`, `LIMIT window`), each window in its own short
transaction: nothing holds a lock or a snapshot for the length of an export (on SQLite every transaction
takes the write lock, so one long read would stall the workers). For each window the captions,
recordings with their transcripts, and reviews are batch-loaded with one query each (no N+1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Engine,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from annotate.errors import InvalidInput
from db.models import Caption, CaptionKind, Image, Recording, RecordingStatus, Review, Transcript, User
from db.session import read_only_engine

State = Literal["approved", "captioned", "all"]
STATES: tuple[str, ...] = ("approved", "captioned", "all")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Captions that no longer speak for their image.
DEAD_CAPTION_STATES = ("rejected", "superseded")
# Recordings whose transcripts do not belong in a dataset.
DEAD_RECORDING_STATES = (RecordingStatus.rejected, RecordingStatus.failed)
EDITED = CaptionKind.edited.value


def parse_when(text: str | None) -> datetime | None:
    """An ISO date or date-time; one without a zone is UTC."""
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not an ISO date like 2026-01-31 or 2026-01-31T12:00:00+00:00."
        ) from None
    return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ExportFilter:
    """Which images an export holds and which caption speaks for each.

    state: `approved` = images with an approved caption; `captioned` = images with any live caption
    (approved preferred, else the latest); `all` = every image, `caption` null where none fits.
    since/until and caption_version narrow the captions that may be chosen (by their created_at and
    prompt_version); with `all` every image is still listed.
    """

    project_id: int
    state: State = "approved"
    since: datetime | None = None
    until: datetime | None = None
    caption_version: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise InvalidInput(f"Unknown state {self.state!r}; use one of {', '.join(STATES)}.")
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("Dates need a time zone (e.g. 2026-01-31T00:00:00+00:00).")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "caption_version": self.caption_version,
        }


@dataclass(frozen=True)
class SplitSpec:
    """Deterministic split by image hash: int(sha256[:8], 16) % 100 against cumulative percentages.

    The hash of the image bytes decides, so an image keeps its split across exports, databases and
    re-ingests, and duplicates of one image cannot leak between train and test.
    """

    train: int = 90
    validation: int = 5
    test: int = 5

    def __post_init__(self) -> None:
        parts = (self.train, self.validation, self.test)
        if any(p < 0 for p in parts) or sum(parts) != 100:
            raise InvalidInput(f"Split percentages must be non-negative and add up to 100, not {parts}.")

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        """ "90,5,5" (train, validation, test)."""
        try:
            parts = [int(p) for p in text.replace("/", ",").split(",")]
        except ValueError:
            raise InvalidInput(f"--split takes three whole percentages like 90,5,5, not {text!r}.") from None
        if len(parts) != 3:
            raise InvalidInput(f"--split takes three percentages (train,validation,test), not {text!r}.")
        return cls(*parts)

    def split_of(self, sha256: str) -> str:
        bucket = int(sha256[:8], 16) % 100
        if bucket < self.train:
            return "train"
        if bucket < self.train + self.validation:
            return "validation"
        return "test"

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": self.train,
            "validation": self.validation,
            "test": self.test,
            "method": "int(sha256[:8], 16) % 100: below train -> train, below train+validation -> "
            "validation, else test",
        }


@dataclass(slots=True)
class CaptionRow:
    id: int
    image_id: int
    recording_id: int | None
    transcript_id: int | None
    parent_id: int | None
    kind: str
    text: str
    cleaner: str
    model: str
    prompt_version: str
    faithfulness: float | None
    flags: list[Any]
    flagged: bool
    status: str
    created_at: datetime


@dataclass(slots=True)
class RecordingRow:
    id: int
    image_id: int
    annotator: str
    seconds: float
    original_key: str
    content_type: str
    created_at: datetime
    transcript: str = ""
    language: str = ""
    segments: list[Any] = field(default_factory=list)
    engine: str = ""
    model: str = ""


@dataclass(slots=True)
class ReviewRow:
    caption_id: int
    decision: str
    reviewer: str | None
    reason: str
    source: str
    created_at: datetime


@dataclass(slots=True)
class ImageRecord:
    """One image and everything an export says about it; `chosen` is the caption that speaks for it."""

    id: int
    sha256: str
    source: str
    blob_key: str
    width: int
    height: int
    format: str
    captions: list[CaptionRow]
    recordings: list[RecordingRow]
    reviews: list[ReviewRow]
    chosen: CaptionRow | None


def _caption_conditions(flt: ExportFilter) -> list[Any]:
    conditions: list[Any] = []
    if flt.caption_version is not None:
        conditions.append(Caption.prompt_version == flt.caption_version)
    if flt.since is not None:
        conditions.append(Caption.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(Caption.created_at < flt.until)
    return conditions


def _image_condition(flt: ExportFilter, after_id: int = 0, upto_id: int | None = None) -> Any:
    """SQL that keeps the images with ids in (after_id, upto_id] that have a caption the filter could
    choose (every image in the range for `all`).

    The id bounds are repeated on the captions inside EXISTS: PostgreSQL plans the EXISTS as a merge
    semi-join over ix_captions_image, and without its own bound that scan starts at the first caption of
    the table for every window (quadratic: a million images took 115 s instead of under 60).
    """
    window = [Image.id > after_id]
    caption_window = [Caption.image_id > after_id]
    if upto_id is not None:
        window.append(Image.id <= upto_id)
        caption_window.append(Caption.image_id <= upto_id)
    if flt.state == "all":
        return and_(*window)
    status = (
        Caption.status == "approved"
        if flt.state == "approved"
        else Caption.status.not_in(DEAD_CAPTION_STATES)
    )
    caption = exists().where(
        and_(Caption.image_id == Image.id, status, *caption_window, *_caption_conditions(flt))
    )
    return and_(*window, caption)


def _fits(caption: CaptionRow, flt: ExportFilter) -> bool:
    if flt.caption_version is not None and caption.prompt_version != flt.caption_version:
        return False
    if flt.since is not None and caption.created_at < flt.since:
        return False
    return not (flt.until is not None and caption.created_at >= flt.until)


def choose_caption(captions: list[CaptionRow], flt: ExportFilter) -> CaptionRow | None:
    """The latest approved caption (a reviewer's edit first); else, unless `approved`, the latest live one."""
    candidates = [c for c in captions if _fits(c, flt)]
    approved = [c for c in candidates if c.status == "approved"]
    if approved:
        return max(approved, key=lambda c: (c.kind == EDITED, c.created_at, c.id))
    if flt.state == "approved":
        return None
    live = [c for c in candidates if c.status not in DEAD_CAPTION_STATES]
    return max(live, key=lambda c: (c.created_at, c.id)) if live else None


def count_images(engine: Engine, flt: ExportFilter) -> int:
    """How many images the filter selects (for the progress bar and the manifest's check)."""
    query = select(func.count()).select_from(Image).where(Image.project_id == flt.project_id)
    query = query.where(_image_condition(flt))
    with reader(engine).connect() as conn:
        return int(conn.execute(query).scalar_one())


def reader(engine: Engine) -> Engine:
    """The engine for reading only: on SQLite its transactions begin DEFERRED, so in WAL mode an export
    (or two export processes) never holds up the workers' writes."""
    return read_only_engine(engine)


def plan_parts(engine: Engine, flt: ExportFilter, parts: int) -> list[tuple[int, int]]:
    """Cut the selected images into up to `parts` runs of about equal size, in one pass over the ids.

    Returns (last image id, images) per run in id order; the runs' images add up to the selection's count,
    so this stands in for count_images. A run is the ids after the previous run's last id up to its own.
    """
    if parts < 1:
        raise InvalidInput("An export needs at least one part.")
    numbered = (
        select(Image.id, func.ntile(parts).over(order_by=Image.id).label("part"))
        .where(Image.project_id == flt.project_id, _image_condition(flt))
        .subquery()
    )
    query = select(func.max(numbered.c.id), func.count()).group_by(numbered.c.part).order_by(numbered.c.part)
    with reader(engine).connect() as conn:
        return [(int(last), int(count)) for last, count in conn.execute(query).all()]


def window_query(flt: ExportFilter, after_id: int, upto_id: int | None, window: int) -> Select[Any]:
    """The next `window` selected images after `after_id` (keyset paging), in id order."""
    return (
        select(
            Image.id,
            Image.sha256,
            Image.source,
            Image.blob_key,
            Image.width,
            Image.height,
            Image.format,
        )
        .where(Image.project_id == flt.project_id, _image_condition(flt, after_id, upto_id))
        .order_by(Image.id)
        .limit(window)
    )


def iter_records(
    engine: Engine,
    flt: ExportFilter,
    window: int = 1000,
    after_id: int = 0,
    upto_id: int | None = None,
) -> Iterator[list[ImageRecord]]:
    """Yield the selected images in id order, one window (a list of up to `window` records) at a time.

    after_id / upto_id limit the ids to (after_id, upto_id], for one part of a parallel export.
    """
    if window < 1:
        raise InvalidInput("The window must hold at least one image.")
    engine = reader(engine)
    last_id = after_id
    while True:
        with engine.connect() as conn:
            query = window_query(flt, last_id, upto_id, window)
            images = conn.execute(query).all()
            if not images:
                return
            records = _load_window(conn, images, flt)
            conn.rollback()  # read-only: end the transaction before handing rows to slow consumers
        last_id = images[-1].id
        yield records
        if len(images) < window:
            return


def _load_window(conn: Connection, images: list[Any], flt: ExportFilter) -> list[ImageRecord]:
    ids = [row[0] for row in images]
    captions = _load_captions(conn, ids)
    recordings = _load_recordings(conn, ids)
    caption_ids = [c.id for group in captions.values() for c in group]
    reviews = _load_reviews(conn, caption_ids)
    no_captions: list[CaptionRow] = []
    no_recordings: list[RecordingRow] = []
    records = []
    for image_id, sha256, source, blob_key, width, height, image_format in images:
        image_captions = captions.get(image_id, no_captions)
        records.append(
            ImageRecord(
                image_id,
                sha256,
                source,
                blob_key,
                width,
                height,
                image_format,
                image_captions,
                recordings.get(image_id, no_recordings),
                [r for c in image_captions for r in reviews.get(c.id, ())] if reviews else [],
                choose_caption(image_captions, flt),
            )
        )
    return records


try:  # JSON columns are read as text and parsed here: orjson is several times faster than the drivers' json
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is optional
    from json import loads as _loads


def _json(value: str | bytes | None) -> Any:
    return _loads(value) if value else None


def _in_window(conn: Connection, column: Any, ids: list[int]) -> tuple[Any, frozenset[int] | None]:
    """SQL for `column IN ids` (ids ascending), and the id set the caller must still filter rows by.

    A dense window (most ids between the first and the last are wanted) becomes a range, one index scan
    instead of a probe per id; rows of the ids in between that are not wanted (another project's images,
    images the filter leaves out) come back too, so the caller drops what is not in the returned set.
    A sparse window is `= ANY(array)` on PostgreSQL (one parameter, not a thousand to parse), else IN.
    """
    low, high = ids[0], ids[-1]
    if len(ids) * 2 >= high - low + 1:
        return column.between(low, high), frozenset(ids)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer))), None
    return column.in_(ids), None


def _load_captions(conn: Connection, image_ids: list[int]) -> dict[int, list[CaptionRow]]:
    condition, wanted = _in_window(conn, Caption.image_id, image_ids)
    query = (
        select(
            Caption.id,
            Caption.image_id,
            Caption.recording_id,
            Caption.transcript_id,
            Caption.parent_id,
            type_coerce(Caption.kind, String),
            Caption.text,
            Caption.cleaner,
            Caption.model,
            Caption.prompt_version,
            Caption.faithfulness,
            cast(Caption.flags, Text),
            Caption.flagged,
            Caption.status,
            Caption.created_at,
        )
        .where(condition)
        .order_by(Caption.image_id, Caption.id)
    )
    result: dict[int, list[CaptionRow]] = {}
    for (
        caption_id,
        image_id,
        recording_id,
        transcript_id,
        parent_id,
        kind,
        text,
        cleaner,
        model,
        prompt_version,
        faithfulness,
        flags,
        flagged,
        status,
        created_at,
    ) in conn.execute(query).all():
        if wanted is not None and image_id not in wanted:
            continue
        caption = CaptionRow(
            caption_id,
            image_id,
            recording_id,
            transcript_id,
            parent_id,
            kind,
            text,
            cleaner,
            model or "",
            prompt_version or "",
            faithfulness,
            list(_loads(flags)) if flags and flags != "[]" else [],
            bool(flagged),
            status,
            created_at,
        )
        group = result.get(image_id)
        if group is None:
            result[image_id] = [caption]
        else:
            group.append(caption)
    return result


def _segments(text: str | None) -> list[dict[str, Any]]:
    """A transcript's segments as a dataset needs them: span and text (scores stay in the database)."""
    return [
        {
            "start": float(s.get("start", 0.0)),
            "end": float(s.get("end", 0.0)),
            "text": str(s.get("text", "")),
        }
        for s in (_json(text) or [])
        if isinstance(s, dict)
    ]


def _load_recordings(conn: Connection, image_ids: list[int]) -> dict[int, list[RecordingRow]]:
    """Live recordings that have a transcript, each with its newest transcript revision."""
    condition, wanted = _in_window(conn, Recording.image_id, image_ids)
    query = (
        select(
            Recording.id,
            Recording.image_id,
            User.pseudonym,
            Recording.duration_seconds,
            Recording.original_key,
            Recording.content_type,
            Recording.created_at,
            Transcript.text,
            Transcript.language,
            cast(Transcript.segments, Text),
            Transcript.engine,
            Transcript.model,
        )
        .join(User, User.id == Recording.user_id)
        .join(Transcript, Transcript.recording_id == Recording.id)
        .where(condition, Recording.status.not_in(DEAD_RECORDING_STATES))
        .order_by(Recording.image_id, Recording.id, Transcript.revision)
    )
    newest: dict[int, RecordingRow] = {}
    for (
        recording_id,
        image_id,
        pseudonym,
        seconds,
        original_key,
        content_type,
        created_at,
        text,
        language,
        segments,
        engine,
        model,
    ) in conn.execute(query).all():
        if wanted is not None and image_id not in wanted:
            continue
        # Ordered by revision: the last row seen for a recording is its newest transcript.
        newest[recording_id] = RecordingRow(
            recording_id,
            image_id,
            pseudonym,
            float(seconds),
            original_key,
            content_type,
            created_at,
            text,
            language or "",
            _segments(segments),
            engine or "",
            model or "",
        )
    result: dict[int, list[RecordingRow]] = {}
    for recording in newest.values():
        group = result.get(recording.image_id)
        if group is None:
            result[recording.image_id] = [recording]
        else:
            group.append(recording)
    return result


def _load_reviews(conn: Connection, caption_ids: list[int]) -> dict[int, list[ReviewRow]]:
    if not caption_ids:
        return {}
    caption_ids.sort()
    condition, wanted = _in_window(conn, Review.caption_id, caption_ids)
    query = (
        select(
            Review.caption_id,
            type_coerce(Review.decision, String),
            User.pseudonym,
            Review.reason,
            Review.source,
            Review.created_at,
        )
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(condition)
        .order_by(Review.caption_id, Review.id)
    )
    result: dict[int, list[ReviewRow]] = {}
    for caption_id, decision, pseudonym, reason, source, created_at in conn.execute(query).all():
        if wanted is not None and caption_id not in wanted:
            continue
        result.setdefault(caption_id, []).append(
            ReviewRow(caption_id, decision, pseudonym, reason or "", source, created_at)
        )
    return result
