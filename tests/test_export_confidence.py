"""Every recording of an exported row carries its transcript's confidence figures and flags, in the
JSONL and the Parquet files alike, so a data lead can filter out the doubtful ones (SQLite and
PostgreSQL through the `engine` fixture)."""

from __future__ import annotations

import pyarrow.parquet as pq
from sqlalchemy import update

from db.models import Transcript
from tests.test_export import all_rows, run_export, seed_export

UNSURE = {
    "low_words": 3,
    "low_word_share": 0.6,
    "mean_logprob": -1.25,
    "unsure": True,
    "reasons": ["low_word_share:0.60", "mean_logprob:-1.25"],
    "detected_language": "es",
    "detected_probability": 0.91,
    "cascade": {
        "kept": "base",
        "reason": "escalation was at least as sure",
        "first": {"model": "tiny.en", "text": "a red bow", "language": "en"},
        "escalation": {"model": "base", "text": "a red boat", "language": "en"},
    },
}
SURE = {"low_words": 0, "low_word_share": 0.0, "mean_logprob": -0.2, "unsure": False, "reasons": []}


def test_an_unsure_transcripts_figures_reach_the_jsonl_and_the_parquet(
    engine, blobs, session, tmp_path
) -> None:
    seeded = seed_export(session, blobs, extra_approved=1)
    unsure_id = seeded.recordings["approved"].id
    session.execute(
        update(Transcript)
        .where(Transcript.recording_id == unsure_id)
        .values(confidence=UNSURE, flags=["unsure", "language:es"])
    )
    session.execute(update(Transcript).where(Transcript.recording_id != unsure_id).values(confidence=SURE))
    session.commit()
    out = tmp_path / "export"

    manifest = run_export(engine, blobs, seeded.project, out, formats=("jsonl", "parquet"))

    from_jsonl = {r["id"]: r for row in all_rows(out) for r in row["recordings"]}
    parquet = [f for f in manifest["files"] if f["format"] == "parquet"]
    from_parquet = {
        r["id"]: r
        for f in parquet
        for row in pq.read_table(out / f["path"]).to_pylist()
        for r in row["recordings"]
    }
    assert set(from_jsonl) == set(from_parquet) and unsure_id in from_jsonl and len(from_jsonl) > 1
    expected = {
        "low_word_share": 0.6,
        "mean_logprob": -1.25,
        "unsure": True,
        "detected_language": "es",
        "detected_probability": 0.91,
        "escalated_from": "tiny.en",
    }
    for rows in (from_jsonl, from_parquet):
        assert rows[unsure_id]["confidence"] == expected
        assert rows[unsure_id]["transcript_flags"] == ["unsure", "language:es"]
        sure = [r for rid, r in rows.items() if rid != unsure_id]
        assert all(r["confidence"]["unsure"] is False and r["transcript_flags"] == [] for r in sure)
        assert all(r["confidence"]["escalated_from"] == "" for r in sure)
        assert all(r["confidence"]["detected_probability"] is None for r in sure)
    # A data lead's filter: the unsure takes, read straight from the Parquet files.
    assert [rid for rid, r in from_parquet.items() if r["confidence"]["unsure"]] == [unsure_id]
