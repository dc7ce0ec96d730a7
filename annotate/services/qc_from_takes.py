"""QC computed from every take with pandas (slow at scale): the reference the summaries must match.

Gathers the latest figures per recording into one frame, flags takes against the project's rules and its
own distribution (robust z-score), and summarises each annotator against the project, exactly. Tests
compare annotate.services.qc (which reads the summaries) with this.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.services.qc import (
    FIGURES,
    OUTLIER_Z,
    TAKE_COLUMNS,
    Z_METRICS,
    QcFilter,
    center_scale,
    query_frame,
    records,
    robust_z,
)
from db.models import Caption, CaptionStatus, Project, Recording, Transcript, User
from db.settings import Settings


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
    ).join(Recording, Recording.id == Transcript.recording_id)
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


def qc_report_from_takes(session: Session, settings: Settings, f: QcFilter) -> dict[str, Any]:
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
