"""Keeps each take's QC figures, its stored flags and the metric histograms in step with the take.

A take's figures change when it is measured (intake), transcribed (its latest transcript) and cleaned or
reviewed (its current caption). Whichever changed, the take is refreshed as a whole: its figures are read
back, the histograms get the old values taken out and the new ones put in, and its stored flags (rule
breaks judged with the writer's settings, plus whatever the stages put in meta["qc_flags"]) are diffed
against the rows it had. Called by db.summaries' after_flush hook, in the same transaction, and by
`voicecap stats rebuild` (fresh tables) in chunks of the same size.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, text, true, update

from db.models import Caption, CaptionStatus, Project, Recording, Transcript
from db.settings import Settings, get_settings
from db.summary_models import (
    ALL_ANNOTATORS,
    ANY_STORED_FLAG,
    Z_METRICS,
    MetricBucket,
    QcFlag,
    QcFlagCount,
    QcMedian,
    TakeFigures,
)

CHUNK = 1000
# Shares (0..1) in linear buckets, positive quantities in log buckets: fine ones (0.1%, 0.5%) for the
# project's histogram, whose median and spread set every take's outlier thresholds (a few hundred rows a
# metric), coarse ones (1%, 5%) per annotator, whose medians are only compared with those thresholds.
FRACTION_METRICS = {"silence_fraction", "faithfulness"}
FRACTION_STEPS = {True: 1000, False: 100}
LOG_BASE = 0.1
LOG_GROWTH = {True: 1.005, False: 1.05}


@dataclass(frozen=True)
class Figures:
    project_id: int
    user_id: int
    caption_id: int | None = None
    duration_seconds: float | None = None
    loudness_dbfs: float | None = None
    silence_fraction: float | None = None
    words_per_minute: float | None = None
    transcript_words: int | None = None
    caption_words: int | None = None
    faithfulness: float | None = None

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Limits:
    min_seconds: float
    max_seconds: float


def metric_bucket(metric: str, value: float, fine: bool) -> int:
    if metric in FRACTION_METRICS:
        return round(min(max(value, 0.0), 1.0) * FRACTION_STEPS[fine])
    if value <= LOG_BASE:
        return 0
    return 1 + int(math.log(value / LOG_BASE) / math.log(LOG_GROWTH[fine]))


def rule_flags(figures: Figures, limits: Limits | None, settings: Settings) -> set[str]:
    """The project's and the settings' rules a take breaks."""
    flags: set[str] = set()
    seconds = figures.duration_seconds
    if limits is not None and seconds is not None:
        if seconds < limits.min_seconds:
            flags.add("too_short")
        if seconds > limits.max_seconds:
            flags.add("too_long")
    if figures.silence_fraction is not None and figures.silence_fraction > settings.mostly_silent_fraction:
        flags.add("mostly_silent")
    if figures.loudness_dbfs is not None and figures.loudness_dbfs < settings.quiet_loudness_dbfs:
        flags.add("quiet")
    if figures.faithfulness is not None and figures.faithfulness < 1.0 - settings.faithfulness_threshold:
        flags.add("unfaithful")
    return flags


def current_figures(conn: Connection, ids: list[int]) -> dict[int, tuple[Figures, set[str]]]:
    """Each take's figures from its rows now, with the flags its meta carries."""
    takes = conn.execute(
        select(
            Recording.id,
            Recording.project_id,
            Recording.user_id,
            Recording.duration_seconds,
            Recording.loudness_dbfs,
            Recording.silence_fraction,
            Recording.meta,
        ).where(Recording.id.in_(ids))
    ).all()
    transcripts: dict[int, tuple[int, int, float]] = {}
    for rid, revision, words, wpm in conn.execute(
        select(
            Transcript.recording_id, Transcript.revision, Transcript.word_count, Transcript.words_per_minute
        ).where(Transcript.recording_id.in_(ids))
    ):
        if rid not in transcripts or revision >= transcripts[rid][0]:
            transcripts[rid] = (revision, words, wpm)
    captions: dict[int, tuple[int, int, float | None]] = {}
    for rid, cid, words, faithfulness in conn.execute(
        select(Caption.recording_id, Caption.id, Caption.word_count, Caption.faithfulness).where(
            Caption.recording_id.in_(ids), Caption.status != CaptionStatus.superseded
        )
    ):
        if rid not in captions or cid > captions[rid][0]:
            captions[rid] = (cid, words, faithfulness)
    result: dict[int, tuple[Figures, set[str]]] = {}
    for rid, project_id, user_id, seconds, loudness, silence, meta in takes:
        _, transcript_words, wpm = transcripts.get(rid, (None, None, None))
        caption_id, caption_words, faithfulness = captions.get(rid, (None, None, None))
        figures = Figures(
            project_id,
            user_id,
            caption_id,
            seconds,
            loudness,
            silence,
            wpm,
            transcript_words,
            caption_words,
            faithfulness,
        )
        meta_flags = (meta or {}).get("qc_flags") if isinstance(meta, dict) else None
        result[rid] = (figures, {str(f) for f in meta_flags or [] if f})
    return result


def _stored(conn: Connection, ids: list[int]) -> tuple[dict[int, Figures], dict[int, set[str]]]:
    columns = [getattr(TakeFigures, f.name) for f in fields(Figures)]
    figures = {
        row[0]: Figures(*row[1:])
        for row in conn.execute(
            select(TakeFigures.recording_id, *columns).where(TakeFigures.recording_id.in_(ids))
        )
    }
    flags: dict[int, set[str]] = defaultdict(set)
    for rid, flag in conn.execute(
        select(QcFlag.recording_id, QcFlag.flag).where(QcFlag.recording_id.in_(ids))
    ):
        flags[rid].add(flag)
    return figures, flags


def _limits(conn: Connection, project_ids: Iterable[int]) -> dict[int, Limits]:
    rows = conn.execute(
        select(Project.id, Project.min_seconds, Project.max_seconds).where(Project.id.in_(set(project_ids)))
    )
    return {pid: Limits(low, high) for pid, low, high in rows}


class QcTally:
    """Histogram and flag-count increments over one refresh, written one upsert per row."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, int, str, int], list[float]] = defaultdict(lambda: [0, 0.0])
        self.flags: dict[tuple[int, int, str], int] = defaultdict(int)

    def figures(self, figures: Figures, sign: int) -> None:
        for metric in Z_METRICS:
            value = getattr(figures, metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            for user in (figures.user_id, ALL_ANNOTATORS):
                bucket = metric_bucket(metric, float(value), fine=user == ALL_ANNOTATORS)
                row = self.buckets[(figures.project_id, user, metric, bucket)]
                row[0] += sign
                row[1] += sign * float(value)

    def flag_set(self, figures: Figures, flags: set[str], sign: int) -> None:
        for flag in flags | ({ANY_STORED_FLAG} if flags else set()):
            self.flags[(figures.project_id, figures.user_id, flag)] += sign

    def write(self, conn: Connection, medians: bool = True) -> None:
        """Upserts the increments; `medians`: also moves the annotators' median positions (a rebuild
        recounts them all at the end instead)."""
        from db.summaries import _has_table, _upsert

        moved: dict[tuple[int, int, str], list[tuple[int, int]]] = defaultdict(list)
        for key, (takes, total) in sorted(self.buckets.items()):
            if takes or total:
                keys = dict(zip(("project_id", "user_id", "metric", "bucket"), key, strict=True))
                _upsert(conn, MetricBucket.__table__, keys, {"takes": int(takes), "total": total})
            if takes and key[1] != ALL_ANNOTATORS:
                moved[key[:3]].append((key[3], int(takes)))
        for key, takes in sorted(self.flags.items()):
            if takes:
                keys = dict(zip(("project_id", "user_id", "flag"), key, strict=True))
                _upsert(conn, QcFlagCount.__table__, keys, {"takes": takes})
        if medians and _has_table(conn, QcMedian.__tablename__):  # not before migration 0011
            for key, changes in sorted(moved.items()):
                move_median(conn, key, changes)


def _neighbour(conn: Connection, key: tuple[int, int, str], bucket: int, after: bool) -> tuple[int, int]:
    """The next (or previous) bucket with takes in the annotator's histogram, and its takes."""
    b = MetricBucket
    query = select(b.bucket, b.takes).where(
        b.project_id == key[0], b.user_id == key[1], b.metric == key[2], b.takes > 0
    )
    query = (
        query.where(b.bucket > bucket).order_by(b.bucket)
        if after
        else query.where(b.bucket < bucket).order_by(b.bucket.desc())
    )
    row = conn.execute(query.limit(1)).one()
    return int(row[0]), int(row[1])


def _bucket_takes(conn: Connection, key: tuple[int, int, str], bucket: int) -> int:
    b = MetricBucket
    where = (b.project_id == key[0], b.user_id == key[1], b.metric == key[2], b.bucket == bucket)
    return int(conn.scalar(select(b.takes).where(*where)) or 0)


def move_median(conn: Connection, key: tuple[int, int, str], changes: list[tuple[int, int]]) -> None:
    """After the annotator's histogram gained (or lost) takes in these buckets: moves their median
    position a bucket at a time to the bucket holding the lower middle take. The row is locked first, so
    concurrent writers for one annotator move it one after the other, each seeing the other's buckets."""
    from db.summaries import _upsert

    m = QcMedian
    keys = dict(zip(("project_id", "user_id", "metric"), key, strict=True))
    where = (m.project_id == key[0], m.user_id == key[1], m.metric == key[2])
    _upsert(conn, QcMedian.__table__, keys, {"takes": 0})  # exists, so it can be locked
    takes, bucket, below = conn.execute(
        select(m.takes, m.bucket, m.below).where(*where).with_for_update()
    ).one()
    fresh = takes <= 0
    takes += sum(n for _, n in changes)
    if takes <= 0:
        conn.execute(delete(QcMedian).where(*where))
        return
    if fresh:  # the histogram was empty, so its first bucket now is one of these
        bucket, below = min(b for b, n in changes if n > 0), 0
    else:
        below += sum(n for b, n in changes if b < bucket)
    middle = (takes - 1) // 2
    here = _bucket_takes(conn, key, bucket)
    while not below <= middle < below + here:
        if middle < below:
            bucket, here = _neighbour(conn, key, bucket, after=False)
            below -= here
        else:
            below += here
            bucket, here = _neighbour(conn, key, bucket, after=True)
    conn.execute(update(QcMedian).where(*where).values(takes=takes, bucket=bucket, below=below))


def recount_medians(conn: Connection, project_id: int | None = None) -> None:
    """Every annotator's median position recounted from their histograms (after a rebuild or a load)."""
    scope = "" if project_id is None else f" AND project_id = {int(project_id)}"
    conn.execute(delete(QcMedian).where(true() if project_id is None else QcMedian.project_id == project_id))
    conn.execute(
        text(
            "INSERT INTO qc_medians (project_id, user_id, metric, takes, bucket, below) "
            "SELECT project_id, user_id, metric, n, bucket, upto - takes FROM ("
            " SELECT project_id, user_id, metric, bucket, takes,"
            " sum(takes) OVER (PARTITION BY project_id, user_id, metric ORDER BY bucket) AS upto,"
            " sum(takes) OVER (PARTITION BY project_id, user_id, metric) AS n"
            f" FROM metric_buckets WHERE user_id <> {ALL_ANNOTATORS} AND takes > 0{scope}"
            ") AS running WHERE upto - takes <= (n - 1) / 2 AND (n - 1) / 2 < upto"
        )
    )


def refresh(conn: Connection, recording_ids: Iterable[int], fresh: bool = False) -> int:
    """Brings the QC rows of these takes in step with their rows; `fresh`: none stored yet (rebuild).
    Returns how many takes were read."""
    settings = get_settings()
    ids = sorted(set(recording_ids))
    count = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        now = current_figures(conn, chunk)
        before, old_flags = ({}, {}) if fresh else _stored(conn, chunk)
        limits = _limits(conn, {figures.project_id for figures, _ in now.values()})
        tally = QcTally()
        for rid in chunk:
            if rid not in now:
                continue
            figures, meta_flags = now[rid]
            old = before.get(rid)
            if old != figures:
                _write_figures(conn, rid, figures, exists=old is not None)
                if old is not None:
                    tally.figures(old, -1)
                tally.figures(figures, 1)
            flags = rule_flags(figures, limits.get(figures.project_id), settings) | meta_flags
            _write_flags(conn, tally, rid, figures, old, old_flags.get(rid, set()), flags)
        tally.write(conn, medians=not fresh)
        count += len(now)
    return count


def _write_figures(conn: Connection, rid: int, figures: Figures, exists: bool) -> None:
    if exists:
        conn.execute(update(TakeFigures).where(TakeFigures.recording_id == rid).values(**figures.row()))
    else:
        conn.execute(insert(TakeFigures).values(recording_id=rid, **figures.row()))


def _write_flags(
    conn: Connection,
    tally: QcTally,
    rid: int,
    figures: Figures,
    old: Figures | None,
    old_flags: set[str],
    flags: set[str],
) -> None:
    moved = old is not None and (old.project_id, old.user_id) != (figures.project_id, figures.user_id)
    if flags == old_flags and not moved:
        return
    if old_flags:
        conn.execute(delete(QcFlag).where(QcFlag.recording_id == rid))
        tally.flag_set(old or figures, old_flags, -1)
    if flags:
        conn.execute(
            insert(QcFlag),
            [
                {"recording_id": rid, "flag": f, "project_id": figures.project_id, "user_id": figures.user_id}
                for f in sorted(flags)
            ],
        )
        tally.flag_set(figures, flags, 1)


def takes_near_limits(conn: Connection, project_id: int, before: Limits, after: Limits) -> list[int]:
    """Takes whose too_short / too_long may change with the project's new limits (index ranges)."""
    short_low, short_high = sorted((before.min_seconds, after.min_seconds))
    long_low, long_high = sorted((before.max_seconds, after.max_seconds))
    seconds = TakeFigures.duration_seconds
    query = select(TakeFigures.recording_id).where(
        TakeFigures.project_id == project_id,
        or_(
            and_(seconds >= short_low, seconds <= short_high),
            and_(seconds >= long_low, seconds <= long_high),
        ),
    )
    return list(conn.scalars(query))
