"""How the review queue, the dashboard's figures and QC hold up as takes pile up.

Builds a throwaway SQLite database (or uses --database-url, e.g. a scratch PostgreSQL database) with N
takes, each with a transcript and a caption (a tenth flagged, a third already reviewed), then times the
calls the review page and the dashboard make. Prints a Markdown table.

    python bench/review_stats.py --takes 100000
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from db.migrate import upgrade  # noqa: E402
from db.models import Caption, Image, Project, Recording, Review, Transcript, User, utcnow  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.settings import Settings  # noqa: E402
from tests.support.factories import (  # noqa: E402
    caption_values,
    image_values,
    recording_values,
    transcript_values,
    user_values,
)

WORDS = [
    {"start": i * 0.4, "end": i * 0.4 + 0.35, "word": f" word{i}", "probability": 0.9} for i in range(150)
]


def build(session: Session, takes: int, annotators: int) -> None:
    rng = random.Random(7)
    session.execute(insert(Project).values(id=1, name="bench", questions=[]))
    session.execute(
        insert(User), [user_values(f"a{i}", id=i + 1, pseudonym=f"p{i}") for i in range(annotators + 1)]
    )
    now = utcnow()
    batch = 5000
    for start in range(0, takes, batch):
        ids = range(start + 1, min(start + batch, takes) + 1)
        when = [now - timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86399)) for _ in ids]
        session.execute(
            insert(Image),
            [
                image_values(
                    1, id=i, sha256=f"{i:064x}", source=f"img{i}.jpg", width=640, height=480, done_count=1
                )
                for i in ids
            ],
        )
        session.execute(
            insert(Recording),
            [
                recording_values(
                    1,
                    i,
                    2 + i % annotators,
                    id=i,
                    client_uuid=str(uuid.UUID(int=i)),
                    content_type="audio/webm",
                    size_bytes=100000,
                    duration_seconds=rng.gauss(70, 12),
                    loudness_dbfs=-22.0,
                    silence_fraction=rng.random() * 0.4,
                    status="captioned",
                    created_at=w,
                )
                for i, w in zip(ids, when, strict=True)
            ],
        )
        session.execute(
            insert(Transcript),
            [
                transcript_values(
                    i,
                    "words " * 150,
                    id=i,
                    segments=[{"start": 0, "end": 60, "text": ""}],
                    words=WORDS,
                    words_per_minute=rng.gauss(140, 20),
                    flags=[],
                )
                for i in ids
            ],
        )
        session.execute(
            insert(Caption),
            [
                caption_values(
                    i,
                    "caption " * 120,
                    id=i,
                    recording_id=i,
                    transcript_id=i,
                    dedupe_key=f"single:{i}",
                    faithfulness=0.8 if i % 10 == 0 else 0.97,
                    flags=["unsupported_content"] if i % 10 == 0 else [],
                    flagged=i % 10 == 0,
                    status="approved" if i % 3 == 0 else "pending",
                )
                for i in ids
            ],
        )
        session.execute(
            insert(Review),
            [
                {"caption_id": i, "reviewer_id": 1, "decision": "approve", "source": "web"}
                for i in ids
                if i % 3 == 0
            ],
        )
    session.commit()


def timed(label: str, call: Callable[[], Any], rows: list[tuple[str, float]]) -> None:
    started = time.perf_counter()
    call()
    rows.append((label, time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    from annotate.services import qc, review, stats

    workdir = Path(tempfile.mkdtemp(prefix="voicecap-bench-review-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    started = time.perf_counter()
    with sessions() as session:
        build(session, args.takes, args.annotators)
    print(f"built {args.takes} takes in {time.perf_counter() - started:.1f} s ({engine.dialect.name})\n")

    settings = Settings(data_dir=workdir, database_url=url)
    rows: list[tuple[str, float]] = []
    with sessions() as s:
        timed("queue: first page, pending", lambda: review.list_queue(s, review.QueueFilter()), rows)
        timed("queue: flagged only", lambda: review.list_queue(s, review.QueueFilter(flag="flagged")), rows)
        timed(
            "queue: by flag name",
            lambda: review.list_queue(s, review.QueueFilter(flag="unsupported_content")),
            rows,
        )
        timed("queue: one annotator", lambda: review.list_queue(s, review.QueueFilter(annotator_id=5)), rows)
        timed(
            "queue: deep page (after id N/2)",
            lambda: review.list_queue(s, review.QueueFilter(after_id=args.takes // 2)),
            rows,
        )
        timed("caption detail", lambda: review.caption_detail(s, args.takes // 2), rows)
        timed("live counts (polled)", lambda: stats.live_counts(s), rows)
        for by in stats.GROUPINGS:
            timed(f"stats by {by}", lambda by=by: stats.stats(s, 1, by), rows)
        timed("QC report", lambda: qc.qc_report(s, settings, qc.QcFilter(project_id=1)), rows)
        timed(
            "queue: by QC flag",
            lambda: review.list_queue(
                s, review.QueueFilter(recording_ids=qc.recordings_with_flag(s, settings, "any", 1))
            ),
            rows,
        )
    print("| call | seconds |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mb:.0f} MB")
    engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
