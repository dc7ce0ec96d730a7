"""The dashboard's calls at 10,000,000 takes on PostgreSQL, through real HTTP.

Seeding 10M real takes (with transcripts, captions and reviews) takes hours on a small machine, and the
dashboard no longer reads them: it reads the summary tables. So the bench builds a scratch PostgreSQL
database with
  * a realistic slice of real rows (--real-takes takes over the last --real-days days, with captions and
    reviews in every state, a working backlog and failures), counted into the summaries by
    `voicecap stats rebuild`'s code, and
  * summary rows in the shape the other (--takes minus the slice) takes produce: per project, annotator
    and day, ~--per-day takes a working day, 70 ± 12 s each (their duration buckets drawn from that),
    shares of failed/rejected takes, captions by status and review decisions as in the slice, and the
    projects' image counts (one take per image),
then starts `voicecap serve` and times each dashboard call from a lead's HTTP client (p50 / p95).

    python bench/dashboard_scale.py --takes 10000000
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from upload import PASSWORD, database, login, percentile, serve  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Caption, Image, Project, Recording, Review, User  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.summaries import BUCKET_GROWTH, duration_bucket, images_changed  # noqa: E402
from db.summary_models import IMAGE_COUNT_SLOTS, DailySummary  # noqa: E402
from tests.support.factories import caption_values, image_values, recording_values, user_values  # noqa: E402

STATES = (
    ["captioned"] * 90
    + ["failed"] * 1
    + ["rejected"] * 2
    + ["uploaded", "transcribing", "transcribed"] * 2
    + ["cleaning"]
)
CAPTION_STATES = ["pending"] * 10 + ["approved"] * 75 + ["rejected"] * 5 + ["superseded"] * 10


def seed_people(session: Session, projects: int, annotators: int) -> None:
    from annotate.security import hash_password

    hashed = hash_password(PASSWORD)
    session.execute(
        insert(Project),
        [
            dict(id=p, name=f"project-{p}", questions=[], min_seconds=5.0, per_image=1)
            for p in range(1, projects + 1)
        ],
    )
    people = [user_values("lead", "lead", id=1, password_hash=hashed, pseudonym="lead")]
    people += [
        user_values(f"a{i}", id=i, password_hash=hashed, pseudonym=f"p{i}") for i in range(2, annotators + 2)
    ]
    session.execute(insert(User), people)


def seed_real_slice(session: Session, takes: int, days: int, projects: int, annotators: int) -> None:
    """Real takes with captions and reviews, in the last `days` days, project 1 holding half."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    batch = 5000
    for start in range(1, takes + 1, batch):
        ids = range(start, min(start + batch, takes + 1))
        project = {i: 1 if i % 2 else 1 + i % projects for i in ids}
        when = {i: now - timedelta(seconds=rng.randint(0, days * 86400 - 1)) for i in ids}
        state = {i: rng.choice(STATES) for i in ids}
        session.execute(
            insert(Image),
            [
                image_values(project[i], id=i, sha256=f"{i:064x}", source=f"{i}.jpg", done_count=1)
                for i in ids
            ],
        )
        session.execute(
            insert(Recording),
            [
                recording_values(
                    project[i],
                    i,
                    2 + i % annotators,
                    id=i,
                    client_uuid=str(uuid.UUID(int=i)),
                    duration_seconds=max(5.0, rng.gauss(70, 12)),
                    status=state[i],
                    created_at=when[i],
                )
                for i in ids
            ],
        )
        captioned = [i for i in ids if state[i] in ("captioned", "rejected")]
        caption_state = {
            i: "rejected" if state[i] == "rejected" else rng.choice(CAPTION_STATES) for i in captioned
        }
        session.execute(
            insert(Caption),
            [
                caption_values(
                    i,
                    "word " * 40,
                    id=i,
                    recording_id=i,
                    dedupe_key=f"single:{i}",
                    flagged=i % 10 == 0,
                    status=caption_state[i],
                    created_at=when[i] + timedelta(minutes=5),
                )
                for i in captioned
            ],
        )
        decided = [i for i in captioned if caption_state[i] != "pending"]
        session.execute(
            insert(Review),
            [
                {
                    "caption_id": i,
                    "reviewer_id": 1,
                    "decision": {"approved": "approve", "rejected": "reject"}.get(
                        caption_state[i], "reclean"
                    ),
                    "created_at": min(now, when[i] + timedelta(hours=rng.uniform(1, 30))),
                }
                for i in decided
            ],
        )
    session.commit()


def summary_shape(
    takes: int, projects: int, annotators: int, first_day: date, days: int, per_day: int
) -> list:
    """Summary rows for `takes` takes made of (project, annotator, day) groups of ~per_day takes each."""
    rng = np.random.default_rng(7)
    groups = max(1, takes // per_day)
    weights = np.array([projects] + [1] * (projects - 1), dtype=float)  # project 1 is the big one
    project = rng.choice(np.arange(1, projects + 1), size=groups, p=weights / weights.sum())
    annotator = rng.integers(2, annotators + 2, size=groups)
    day = rng.integers(0, days, size=groups)
    key = (project * 100_000 + annotator) * 10_000 + day
    key, counts = np.unique(key, return_counts=True)
    sizes = rng.multinomial(takes, counts / counts.sum())  # takes per distinct group, summing to `takes`
    durations = np.clip(rng.normal(70, 12, size=takes), 5, None)
    group_of_take = np.repeat(np.arange(len(key)), sizes)
    buckets = 1 + (np.log(durations / 0.1) / np.log(BUCKET_GROWTH)).astype(np.int64)
    assert duration_bucket(70.0) == 1 + int(np.log(700) / np.log(BUCKET_GROWTH))
    return [key, sizes, group_of_take, buckets, durations, first_day]


def copy_rows(session: Session, table: str, columns: list[str], rows: Any) -> int:
    """COPY tab-separated rows into `table` (psycopg 3), a few MB at a time."""
    raw = session.connection().connection.driver_connection
    count = 0
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(str(v) for v in row) + "\n")
            count += 1
            if buffer.tell() > 4_000_000:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def seed_summary_shape(session: Session, shape: list) -> tuple[int, int]:
    key, sizes, group_of_take, buckets, durations, first_day = shape
    rng = np.random.default_rng(8)
    seconds = np.bincount(group_of_take, weights=durations, minlength=len(key))

    def daily_rows():
        for k, n, s in zip(key.tolist(), sizes.tolist(), seconds.tolist(), strict=True):
            if n == 0:
                continue
            project, rest = divmod(k, 100_000 * 10_000)
            annotator, day = divmod(rest, 10_000)
            failed, rejected = rng.binomial(n, 0.01), rng.binomial(n, 0.02)
            states = rng.multinomial(
                n - failed, [0.02, 0.8, 0.05, 0.13]
            )  # pending, approved, rejected, superseded
            approved, sent_back = states[1], rng.binomial(n, 0.01)
            yield (
                project,
                annotator,
                (first_day + timedelta(days=day)).isoformat(),
                n,
                round(s, 3),
                failed,
                rejected,
                states[0],
                states[0] // 10,
                states[1],
                states[2],
                states[3],
                40 * (n - failed - states[3]),
                approved,
                states[2],
                sent_back,
                rng.binomial(n, 0.03),
            )

    columns = [c.name for c in DailySummary.__table__.columns]
    daily = copy_rows(session, "daily_summaries", columns, daily_rows())
    buckets = _load_buckets(session, key, group_of_take, buckets, durations, first_day)
    per_project = np.bincount(key // (100_000 * 10_000), weights=sizes)

    for project, n in enumerate(per_project.tolist()):  # added to the slice's counts
        share = int(n) // IMAGE_COUNT_SLOTS
        for slot in range(IMAGE_COUNT_SLOTS) if share else ():
            images_changed(session, project, slot, images=share, complete=int(share * 0.97))
    session.commit()
    return daily, buckets


def _load_buckets(session: Session, key, group_of_take, buckets, durations, first_day: date) -> int:
    """The takes' duration histograms at the four grains db.summaries keeps, added to the slice's."""
    key_of_take = key[group_of_take]
    project, rest = np.divmod(key_of_take, 100_000 * 10_000)
    user, day = np.divmod(rest, 10_000)
    minus = np.full_like(project, -1)
    grains = [(user, day), (user, minus), (minus, day), (minus, minus)]

    def rows():
        for u, d in grains:
            stacked = np.stack([project, u, d, buckets])
            unique, inverse, counts = np.unique(stacked, axis=1, return_inverse=True, return_counts=True)
            sums = np.bincount(inverse.ravel(), weights=durations)
            for (p, uu, dd, b), n, total in zip(unique.T.tolist(), counts, sums, strict=True):
                when = "" if dd < 0 else (first_day + timedelta(days=dd)).isoformat()
                yield (p, uu, when, b, int(n), round(float(total), 3))

    conn = session.connection()
    conn.exec_driver_sql("CREATE TEMP TABLE bucket_load (LIKE duration_buckets)")
    columns = ["project_id", "user_id", "day", "bucket", "takes", "seconds"]
    count = copy_rows(session, "bucket_load", columns, rows())
    conn.exec_driver_sql(
        "INSERT INTO duration_buckets SELECT * FROM bucket_load "
        "ON CONFLICT (project_id, user_id, day, bucket) DO UPDATE SET "
        "takes = duration_buckets.takes + excluded.takes, "
        "seconds = duration_buckets.seconds + excluded.seconds"
    )
    return count


def build(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from annotate.services import summaries

    engine = make_engine(url)
    upgrade(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    started = time.perf_counter()
    with sessions() as session:
        seed_people(session, args.projects, args.annotators)
        seed_real_slice(session, args.real_takes, args.real_days, args.projects, args.annotators)
        summaries.rebuild(session)  # the slice's summaries, from its rows
        session.commit()
        real_rows = session.scalar(select(func.count()).select_from(DailySummary))
        first_day = datetime.now(UTC).date() - timedelta(days=args.days + args.real_days)
        shape = summary_shape(
            args.takes - args.real_takes, args.projects, args.annotators, first_day, args.days, args.per_day
        )
        daily, buckets = seed_summary_shape(session, shape)
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()
    engine.dispose()
    return {
        "seconds": time.perf_counter() - started,
        "daily_rows": daily + int(real_rows or 0),
        "bucket_rows": buckets,
    }


CALLS = [
    ("live counts, one project (polled)", "/api/stats/live?project=1"),
    ("live counts, all projects", "/api/stats/live"),
    ("stats by annotator, biggest project", "/api/stats?project=1&by=annotator"),
    ("stats by day, biggest project", "/api/stats?project=1&by=day"),
    ("stats by project, all projects", "/api/stats?by=project"),
    ("stats by annotator, all projects", "/api/stats?by=annotator"),
]


def measure(base: str, requests: int) -> list[tuple[str, float, float]]:
    client = login(base, "lead")
    rows = []
    for label, path in CALLS:
        client.get(path).raise_for_status()  # warm: the first call imports pandas
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append(time.perf_counter() - started)
        rows.append((label, percentile(times, 50) * 1000, percentile(times, 95) * 1000))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=10_000_000, help="takes the summaries stand for")
    parser.add_argument("--real-takes", type=int, default=50_000, help="real take rows (the recent slice)")
    parser.add_argument("--real-days", type=int, default=3)
    parser.add_argument("--days", type=int, default=730, help="days the other takes spread over")
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--annotators", type=int, default=500)
    parser.add_argument("--per-day", type=int, default=40, help="takes per annotator per working day")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per call")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="voicecap-bench-dashboard-"))
    with database("postgresql", workdir) as url:
        built = build(url, args)
        print(
            f"built in {built['seconds']:.0f} s: {args.takes:,} takes' summaries "
            f"({built['daily_rows']:,} daily rows, {built['bucket_rows']:,} bucket rows), "
            f"{args.real_takes:,} real takes\n"
        )
        with serve(url, workdir) as (base, _pid):
            rows = measure(base, args.requests)
    print("| call | p50 ms | p95 ms |\n|---|---:|---:|")
    for label, p50, p95 in rows:
        print(f"| {label} | {p50:.0f} | {p95:.0f} |")


if __name__ == "__main__":
    main()
