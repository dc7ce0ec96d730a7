"""Automatic quality control: each take's figures, rule flags, and outliers per annotator.

The figures are stored by the stages themselves (Recording at intake: seconds, loudness, silence;
Transcript: words, words per minute; Caption: words, faithfulness). This module gathers the latest of each
per recording into one pandas frame, flags takes against the project's rules and against the project's
own distribution (robust z-score: median and MAD, so a few wild takes cannot hide each other), and
summarises each annotator against the project.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from db.models import Caption, CaptionStatus, PointingAlignment, Project, Recording, Transcript, User
from db.settings import Settings

# |robust z| at or above this is an outlier (Iglewicz and Hoaglin's usual cut-off).
OUTLIER_Z = 3.5
# Metrics compared with the project's distribution.
Z_METRICS = ("duration_seconds", "silence_fraction", "words_per_minute", "transcript_words", "faithfulness")
FIGURES = (
    "duration_seconds",
    "loudness_dbfs",
    "silence_fraction",
    "words_per_minute",
    "transcript_words",
    "caption_words",
    "faithfulness",
)
# Every flag a take can carry, for filter menus. count_mismatch: a spoken count ("three chairs")
# disagrees with the points linked to it (transcribe/pointing_align.py, on the latest transcript).
QC_FLAGS = ["too_short", "too_long", "mostly_silent", "quiet", "unfaithful", "count_mismatch"] + [
    f"outlier_{metric}_{side}" for metric in Z_METRICS for side in ("high", "low")
]


@dataclass
class QcFilter:
    project_id: int | None = None
    annotator_id: int | None = None
    flag: str | None = None  # a flag name, or "any" for takes with at least one flag
    limit: int = 500


def recording_figures(session: Session, project_id: int | None = None) -> pd.DataFrame:
    """One row per recording: intake figures, its latest transcript's and current caption's figures."""
    recordings = select(
        Recording.id.label("recording_id"),
        Recording.project_id,
        Recording.image_id,
        Recording.user_id,
        User.name.label("annotator"),
        Recording.created_at,
        Recording.status,
        Recording.duration_seconds,
        Recording.loudness_dbfs,
        Recording.silence_fraction,
    ).join(User, User.id == Recording.user_id)
    transcripts = select(
        Transcript.recording_id,
        Transcript.revision,
        Transcript.word_count.label("transcript_words"),
        Transcript.words_per_minute,
        PointingAlignment.count_mismatch,
    ).join(Recording, Recording.id == Transcript.recording_id)
    transcripts = transcripts.outerjoin(PointingAlignment, PointingAlignment.transcript_id == Transcript.id)
    captions = select(
        Caption.recording_id,
        Caption.id.label("caption_id"),
        Caption.word_count.label("caption_words"),
        Caption.faithfulness,
        Caption.status.label("caption_status"),
    ).join(Recording, Recording.id == Caption.recording_id)
    if project_id is not None:
        recordings = recordings.where(Recording.project_id == project_id)
        transcripts = transcripts.where(Recording.project_id == project_id)
        captions = captions.where(Recording.project_id == project_id)
    captions = captions.where(Caption.status != CaptionStatus.superseded)

    frame = query_frame(session, recordings)
    if frame.empty:
        return pd.DataFrame(columns=["recording_id", "project_id", "user_id", "annotator", *FIGURES])
    frame["status"] = frame["status"].map(lambda s: getattr(s, "value", s))
    latest_transcript = (
        query_frame(session, transcripts).sort_values("revision").drop_duplicates("recording_id", keep="last")
    )
    current_caption = (
        query_frame(session, captions).sort_values("caption_id").drop_duplicates("recording_id", keep="last")
    )
    frame = frame.merge(
        latest_transcript.drop(columns="revision", errors="ignore"), on="recording_id", how="left"
    )
    frame = frame.merge(current_caption, on="recording_id", how="left")
    for column in FIGURES:
        frame[column] = pd.to_numeric(frame.get(column), errors="coerce")
    return frame


def query_frame(session: Session, query: Any) -> pd.DataFrame:
    """A query's rows as a frame, through Core: ORM row handling costs seconds per 100k rows."""
    result = session.connection().execute(query)
    columns = list(result.keys())
    return pd.DataFrame.from_records([tuple(row) for row in result], columns=columns)


def center_scale(values: pd.Series) -> tuple[float, float]:
    """The median, and a robust spread: 1.4826·MAD, or 1.2533·mean absolute deviation when over half
    the values tie (NaN when there is no spread at all)."""
    values = values.dropna()
    if values.empty:
        return math.nan, math.nan
    median = float(values.median())
    deviation = (values - median).abs()
    mad = float(deviation.median())
    if mad > 0:
        return median, 1.4826 * mad
    mean_ad = float(deviation.mean())
    return median, (1.2533 * mean_ad if mean_ad > 0 else math.nan)


def robust_z(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Robust z-scores of `values` against the distribution of `reference` (0 where it has no spread)."""
    return _z(values, *center_scale(reference))


def _z(values: pd.Series, center: float, scale: float) -> pd.Series:
    if math.isnan(scale):
        return pd.Series(0.0, index=values.index)
    return (values - center) / scale


def add_flags(frame: pd.DataFrame, projects: dict[int, Project], settings: Settings) -> pd.DataFrame:
    """Adds z_<metric> columns and a `flags` list per take: rule breaches and project outliers."""
    frame = frame.copy()
    for metric in Z_METRICS:
        frame[f"z_{metric}"] = 0.0
        for _, group in frame.groupby("project_id"):
            frame.loc[group.index, f"z_{metric}"] = robust_z(group[metric], group[metric]).to_numpy()
    flags: list[list[str]] = [[] for _ in range(len(frame))]

    def mark(mask: pd.Series, flag: str) -> None:
        for position in np.flatnonzero(mask.fillna(False).to_numpy(dtype=bool)):
            flags[position].append(flag)

    limits = frame["project_id"].map(
        lambda p: (projects[p].min_seconds, projects[p].max_seconds) if p in projects else (np.nan, np.nan)
    )
    mark(frame["duration_seconds"] < limits.map(lambda pair: pair[0]), "too_short")
    mark(frame["duration_seconds"] > limits.map(lambda pair: pair[1]), "too_long")
    mark(frame["silence_fraction"] > settings.mostly_silent_fraction, "mostly_silent")
    mark(frame["loudness_dbfs"] < settings.quiet_loudness_dbfs, "quiet")
    mark(frame["faithfulness"] < 1.0 - settings.faithfulness_threshold, "unfaithful")
    mark(frame["count_mismatch"].astype("boolean"), "count_mismatch")
    for metric in Z_METRICS:
        mark(frame[f"z_{metric}"] >= OUTLIER_Z, f"outlier_{metric}_high")
        mark(frame[f"z_{metric}"] <= -OUTLIER_Z, f"outlier_{metric}_low")
    frame["flags"] = flags
    return frame


def annotator_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per project and annotator: takes, medians, and the robust z of each median against the project."""
    rows: list[dict[str, Any]] = []
    # Each project's centre and spread per metric, computed once, not once per annotator.
    spread = {
        (project_id, metric): center_scale(takes[metric])
        for project_id, takes in frame.groupby("project_id")
        for metric in Z_METRICS
    }
    for (project_id, user_id), takes in frame.groupby(["project_id", "user_id"]):
        row: dict[str, Any] = {
            "project_id": int(project_id),
            "user_id": int(user_id),
            "annotator": takes["annotator"].iloc[0],
            "takes": len(takes),
            "flagged_takes": int(takes["flags"].map(bool).sum()),
        }
        outliers: list[str] = []
        for metric in Z_METRICS:
            median = takes[metric].median()
            row[f"median_{metric}"] = None if pd.isna(median) else float(median)
            z = (
                float(_z(pd.Series([median]), *spread[project_id, metric]).iloc[0])
                if pd.notna(median)
                else 0.0
            )
            row[f"z_{metric}"] = round(z, 2)
            if abs(z) >= OUTLIER_Z:
                outliers.append(f"{metric}_{'high' if z > 0 else 'low'}")
        row["outliers"] = outliers
        rows.append(row)
    return pd.DataFrame(rows)


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN as null, numpy scalars as Python numbers."""
    if frame.empty:
        return []
    frame = frame[columns] if columns else frame
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


TAKE_COLUMNS = [
    "recording_id",
    "project_id",
    "image_id",
    "annotator",
    "status",
    "created_at",
    *FIGURES,
    "caption_id",
    "flags",
]


def qc_report(session: Session, settings: Settings, f: QcFilter) -> dict[str, Any]:
    """Takes with their QC flags (filtered) and the per-annotator outlier summary."""
    frame = recording_figures(session, f.project_id)
    projects = {p.id: p for p in session.scalars(select(Project))}
    if frame.empty:
        return {"takes": [], "annotators": [], "total": 0, "flag_counts": {}}
    frame = add_flags(frame, projects, settings)
    summary = annotator_summary(frame)
    if f.annotator_id is not None:
        frame = frame[frame["user_id"] == f.annotator_id]
        summary = summary[summary["user_id"] == f.annotator_id] if not summary.empty else summary
    flag_counts: dict[str, int] = {}
    for flags in frame["flags"]:
        for flag in flags:
            flag_counts[flag] = flag_counts.get(flag, 0) + 1
    if f.flag:
        # astype(bool): an empty frame maps to an object column, which pandas reads as labels.
        wanted = bool if f.flag == "any" else (lambda flags: f.flag in flags)
        frame = frame[frame["flags"].map(wanted).astype(bool)]
    total = len(frame)
    frame = frame.sort_values("recording_id").head(max(1, min(f.limit, 5000)))
    return {
        "takes": records(frame, TAKE_COLUMNS),
        "annotators": records(summary),
        "total": total,
        "flag_counts": dict(sorted(flag_counts.items())),
    }


def recordings_with_flag(
    session: Session, settings: Settings, flag: str, project_id: int | None = None
) -> list[int]:
    """Ids of the takes carrying a QC flag (or any flag, for `any`), for the review queue's filter."""
    if flag != "any" and flag not in QC_FLAGS:
        raise InvalidInput(f"Unknown QC flag {flag!r}; use any or one of {', '.join(QC_FLAGS)}.")
    frame = recording_figures(session, project_id)
    if frame.empty:
        return []
    projects = {p.id: p for p in session.scalars(select(Project))}
    frame = add_flags(frame, projects, settings)
    keep = frame["flags"].map(bool if flag == "any" else (lambda flags: flag in flags))
    return [int(i) for i in frame.loc[keep, "recording_id"]]
