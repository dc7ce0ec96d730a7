"""The records of an export, read in windows of images so memory stays flat however large the project.

Images are read in id order by keyset paging (`id > last`, `LIMIT window`), each window in its own short
transaction: nothing holds a lock or a snapshot for the length of an export (on SQLite every transaction
takes the write lock, so one long read would stall the workers). For each window the captions,
recordings with their transcripts, and reviews are batch-loaded with one query each (no N+1), whose
columns and row classes come from the tables in fields.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Text, any_, bindparam, case, cast, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from annotate.errors import InvalidInput
from annotate.services.export.fields import CAPTIONS, RECORDINGS, REVIEWS, _loads
from annotate.services.export.pointing import point_set_export
from annotate.services.export.selection import DEAD_CAPTION_STATES, ExportFilter, reader, window_query
from db.models import (
    DEAD_RECORDING_STATES,
    Caption,
    CaptionKind,
    CaptionStatus,
    PointSet,
    Recording,
    Review,
    Trace,
    Transcript,
    User,
)

# The row classes made from the tables: a caption, a recording with its newest transcript, a review.
CaptionRow = CAPTIONS.row_class
RecordingRow = RECORDINGS.row_class
ReviewRow = REVIEWS.row_class
EDITED = CaptionKind.edited.value
APPROVED = CaptionStatus.approved.value


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
    captions: list[Any]  # CaptionRow, by id
    recordings: list[Any]  # RecordingRow, by id
    reviews: list[Any]  # ReviewRow of those captions
    chosen: Any | None  # a CaptionRow
    pointing: WindowPointing  # the window's points and traces, by recording id (shared by its records)


@dataclass(slots=True)
class WindowPointing:
    """A window's pointing data by recording id: each take's current point set (points, absent labels),
    its trace's strokes, and the words of its newest transcript (read only for takes with a trace).

    Read for an export (`rendered`), the point sets are instead each take's stored rendering (groups
    JSON, Molmo text: pointing.point_set_export) and the traces their stored JSON text, unparsed."""

    point_sets: dict[int, tuple[list[Any], list[Any]]]
    traces: dict[int, list[Any]]
    words: dict[int, list[Any]]
    rendered: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    trace_texts: dict[int, str] = field(default_factory=dict)


NO_POINTING = WindowPointing({}, {}, {})


def _fits(caption: Any, flt: ExportFilter) -> bool:
    if flt.caption_version is not None and caption.prompt_version != flt.caption_version:
        return False
    if flt.since is not None and caption.created_at < flt.since:
        return False
    return not (flt.until is not None and caption.created_at >= flt.until)


def choose_caption(captions: list[Any], flt: ExportFilter) -> Any | None:
    """The latest approved caption (a reviewer's edit first); else, unless `approved`, the latest live one."""
    candidates = [c for c in captions if _fits(c, flt)]
    approved = [c for c in candidates if c.status == APPROVED]
    if approved:
        return max(approved, key=lambda c: (c.kind == EDITED, c.created_at, c.id))
    if flt.state == "approved":
        return None
    live = [c for c in candidates if c.status not in DEAD_CAPTION_STATES]
    return max(live, key=lambda c: (c.created_at, c.id)) if live else None


def iter_records(
    engine: Engine,
    flt: ExportFilter,
    window: int = 1000,
    after_id: int = 0,
    upto_id: int | None = None,
    rendered: bool = False,
) -> Iterator[list[ImageRecord]]:
    """Yield the selected images in id order, one window (a list of up to `window` records) at a time.

    after_id / upto_id limit the ids to (after_id, upto_id], for one part of a parallel export.
    `rendered`: the pointing as an export writes it (WindowPointing), not parsed.
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
            records = _load_window(conn, images, flt, rendered)
            conn.rollback()  # read-only: end the transaction before handing rows to slow consumers
        last_id = images[-1].id
        yield records
        if len(images) < window:
            return


def _load_window(
    conn: Connection, images: list[Any], flt: ExportFilter, rendered: bool = False
) -> list[ImageRecord]:
    ids = [row[0] for row in images]
    captions = _load_captions(conn, ids)
    recordings = _load_recordings(conn, ids)
    caption_ids = [c.id for group in captions.values() for c in group]
    reviews = _load_reviews(conn, caption_ids)
    take_ids = sorted(r.id for group in recordings.values() for r in group)
    pointing = _load_rendered(conn, take_ids) if rendered else _load_pointing(conn, take_ids)
    no_captions: list[Any] = []
    no_recordings: list[Any] = []
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
                pointing,
            )
        )
    return records


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


def _load_captions(conn: Connection, image_ids: list[int]) -> dict[int, list[Any]]:
    condition, wanted = _in_window(conn, Caption.image_id, image_ids)
    query = select(*CAPTIONS.columns).where(condition).order_by(Caption.image_id, Caption.id)
    result: dict[int, list[Any]] = {}
    for row in conn.execute(query).all():
        caption = CaptionRow(*row)
        image_id = caption.image_id
        if wanted is not None and image_id not in wanted:
            continue
        group = result.get(image_id)
        if group is None:
            result[image_id] = [caption]
        else:
            group.append(caption)
    return result


def _load_recordings(conn: Connection, image_ids: list[int]) -> dict[int, list[Any]]:
    """Live recordings that have a transcript, each with its newest transcript revision."""
    condition, wanted = _in_window(conn, Recording.image_id, image_ids)
    query = (
        select(*RECORDINGS.columns)
        .select_from(Recording)
        .join(User, User.id == Recording.user_id)
        .join(Transcript, Transcript.recording_id == Recording.id)
        .where(condition, Recording.status.not_in(DEAD_RECORDING_STATES))
        .order_by(Recording.image_id, Recording.id, Transcript.revision)
    )
    newest: dict[int, Any] = {}
    for row in conn.execute(query).all():
        recording = RecordingRow(*row)
        if wanted is not None and recording.image_id not in wanted:
            continue
        # Ordered by revision: the last row seen for a recording is its newest transcript.
        newest[recording.id] = recording
    result: dict[int, list[Any]] = {}
    for recording in newest.values():
        group = result.get(recording.image_id)
        if group is None:
            result[recording.image_id] = [recording]
        else:
            group.append(recording)
    return result


def _load_reviews(conn: Connection, caption_ids: list[int]) -> dict[int, list[Any]]:
    if not caption_ids:
        return {}
    caption_ids.sort()
    condition, wanted = _in_window(conn, Review.caption_id, caption_ids)
    query = (
        select(*REVIEWS.columns)
        .select_from(Review)
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(condition)
        .order_by(Review.caption_id, Review.id)
    )
    result: dict[int, list[Any]] = {}
    for row in conn.execute(query).all():
        review = ReviewRow(*row)
        if wanted is not None and review.caption_id not in wanted:
            continue
        result.setdefault(review.caption_id, []).append(review)
    return result


def _load_pointing(conn: Connection, recording_ids: list[int]) -> WindowPointing:
    """The current point set and the trace of each take, by recording id (two queries a window, each an
    index range scan that finds nothing in a describe project), and the words of traced takes."""
    if not recording_ids:
        return NO_POINTING
    condition, wanted = _in_window(conn, PointSet.recording_id, recording_ids)
    query = (
        select(PointSet.recording_id, cast(PointSet.points, Text), cast(PointSet.absent_labels, Text))
        .where(condition)
        .order_by(PointSet.recording_id, PointSet.version)
    )
    point_sets: dict[int, tuple[list[Any], list[Any]]] = {}
    for recording_id, points, absent in conn.execute(query).all():
        if wanted is None or recording_id in wanted:
            # Ordered by version: the last set seen for a take is its current one.
            point_sets[recording_id] = (_loads(points) if points else [], _loads(absent) if absent else [])
    traces = {
        recording_id: _loads(segments) if segments else []
        for recording_id, segments in _trace_texts(conn, recording_ids).items()
    }
    if not point_sets and not traces:
        return NO_POINTING
    return WindowPointing(point_sets, traces, _load_words(conn, sorted(traces)))


def _load_rendered(conn: Connection, recording_ids: list[int]) -> WindowPointing:
    """_load_pointing for an export: each take's current point set as stored rendered (computed here only
    for a set stored without, e.g. before migration 0010 filled them), and the traces' text unparsed."""
    if not recording_ids:
        return NO_POINTING
    condition, wanted = _in_window(conn, PointSet.recording_id, recording_ids)
    unrendered = PointSet.export_groups.is_(None)
    query = (
        select(
            PointSet.recording_id,
            PointSet.export_groups,
            PointSet.points_text,
            # The stored points are read only where there is no rendering.
            case((unrendered, cast(PointSet.points, Text))),
            case((unrendered, cast(PointSet.absent_labels, Text))),
        )
        .where(condition)
        .order_by(PointSet.recording_id, PointSet.version)
    )
    rendered: dict[int, tuple[str, str | None]] = {}
    for recording_id, groups, text, points, absent in conn.execute(query).all():
        if wanted is not None and recording_id not in wanted:
            continue
        # Ordered by version: the last set seen for a take is its current one.
        if groups is None:
            groups, text = point_set_export(
                _loads(points) if points else [], _loads(absent) if absent else [], recording_id
            )
        rendered[recording_id] = (groups, text)
    traces = {
        recording_id: segments or "[]" for recording_id, segments in _trace_texts(conn, recording_ids).items()
    }
    if not rendered and not traces:
        return NO_POINTING
    return WindowPointing({}, {}, _load_words(conn, sorted(traces)), rendered, traces)


def _trace_texts(conn: Connection, recording_ids: list[int]) -> dict[int, str | None]:
    """Each traced take's segments as the database stores them (JSON text, not parsed)."""
    condition, wanted = _in_window(conn, Trace.recording_id, recording_ids)
    return {
        recording_id: segments
        for recording_id, segments in conn.execute(
            select(Trace.recording_id, cast(Trace.segments, Text)).where(condition)
        ).all()
        if wanted is None or recording_id in wanted
    }


def _load_words(conn: Connection, recording_ids: list[int]) -> dict[int, list[Any]]:
    """recording id -> the words of its newest transcript."""
    if not recording_ids:
        return {}
    condition, wanted = _in_window(conn, Transcript.recording_id, recording_ids)
    query = (
        select(Transcript.recording_id, cast(Transcript.words, Text))
        .where(condition)
        .order_by(Transcript.recording_id, Transcript.revision)
    )
    # Ordered by revision: the last row seen for a take is its newest transcript.
    return {
        recording_id: _loads(words) if words else []
        for recording_id, words in conn.execute(query).all()
        if wanted is None or recording_id in wanted
    }
