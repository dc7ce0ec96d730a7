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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from upload import PASSWORD, PG_ADMIN_URL, database, login, percentile, serve  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Caption, Image, Project, Recording, Review, User  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.settings import get_settings  # noqa: E402
from db.summaries import (  # noqa: E402
    BUCKET_GROWTH,
    derive_annotator_buckets,
    duration_bucket,
    images_changed,
)
from db.summary_models import (  # noqa: E402
    ALL_ANNOTATORS,
    ANY_STORED_FLAG,
    IMAGE_COUNT_SLOTS,
    ROLLUP_SLOTS,
    Z_METRICS,
    DailySummary,
)
from db.take_qc import FRACTION_METRICS, FRACTION_STEPS, LOG_BASE, LOG_GROWTH, recount_medians  # noqa: E402
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
    conn = session.connection()
    conn.exec_driver_sql("CREATE TEMP TABLE daily_load (LIKE daily_summaries)")
    daily = copy_rows(session, "daily_load", columns, daily_rows())
    conn.exec_driver_sql("INSERT INTO daily_summaries SELECT * FROM daily_load")
    _roll_up(session, columns)
    buckets = _load_buckets(session, key, group_of_take, buckets, durations, first_day)
    derive_annotator_buckets(session.connection())  # the annotators' histograms across projects
    per_project = np.bincount(key // (100_000 * 10_000), weights=sizes)

    for project, n in enumerate(per_project.tolist()):  # added to the slice's counts
        share = int(n) // IMAGE_COUNT_SLOTS
        for slot in range(IMAGE_COUNT_SLOTS) if share else ():
            images_changed(session, project, slot, images=share, complete=int(share * 0.97))
    session.commit()
    return daily, buckets


def _roll_up(session: Session, columns: list[str]) -> None:
    """The loaded daily rows' roll-ups and day marks, as db.summaries.Tally writes them (slot = the
    annotator's id modulo ROLLUP_SLOTS), added to the slice's."""
    conn = session.connection()
    counted = [c for c in columns if c not in ("project_id", "user_id", "day")]
    sums = ", ".join(f"sum({c})" for c in counted)
    add = ", ".join(f"{c} = summary_rollups.{c} + excluded.{c}" for c in [*counted, "active_days"])
    slot = f"mod(user_id, {ROLLUP_SLOTS})"
    grains = [
        ("user_id", "''", "count(*) FILTER (WHERE takes > 0)", "project_id, user_id"),
        ("-1", "day", "0", f"project_id, day, {slot}"),
        ("-1", "''", "0", f"project_id, {slot}"),
    ]
    for user, day, active, group in grains:
        conn.exec_driver_sql(
            "INSERT INTO summary_rollups "
            f"(project_id, user_id, day, slot, {', '.join(counted)}, active_days) "
            f"SELECT project_id, {user}, {day}, min({slot}), {sums}, {active} "
            f"FROM daily_load GROUP BY {group} "
            f"ON CONFLICT (project_id, user_id, day, slot) DO UPDATE SET {add}"
        )
    for project, user in (("project_id", "-1"), ("0", "user_id"), ("0", "-1")):
        conn.exec_driver_sql(
            f"INSERT INTO active_days SELECT DISTINCT {project}, {user}, day FROM daily_load WHERE takes > 0 "
            "ON CONFLICT DO NOTHING"
        )
    conn.exec_driver_sql("DELETE FROM annotator_active_days")
    conn.exec_driver_sql(
        "INSERT INTO annotator_active_days SELECT user_id, count(*) FROM active_days "
        "WHERE project_id = 0 AND user_id > 0 GROUP BY user_id"
    )


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


FIGURE_INDEXES = [f"ix_take_figures_{m}" for m in Z_METRICS] + ["ix_take_figures_user"]


def seed_qc_shape(
    session: Session, shape: list, first_id: int, min_seconds: float, max_seconds: float
) -> int:
    """The other takes' QC rows: a take_figures row each (figures drawn around typical values, with
    the take lengths of the summaries), the flags the rules give them, their counts, the metric
    histograms at both grains and the annotators' median positions, all as db.take_qc writes them.
    Their recordings exist only as summaries, so take_figures' and qc_flags' foreign keys to recordings
    are dropped in this scratch database."""
    key, _sizes, group_of_take, _buckets, durations, _first_day = shape
    rng = np.random.default_rng(9)
    n = len(durations)
    key_of_take = key[group_of_take]
    project, rest = np.divmod(key_of_take, 100_000 * 10_000)
    user = rest // 10_000
    wpm = np.clip(rng.normal(150, 25, n), 20, None)
    figures = pd.DataFrame(
        {
            "recording_id": np.arange(first_id, first_id + n),
            "project_id": project,
            "user_id": user,
            "caption_id": np.arange(first_id, first_id + n),
            "duration_seconds": durations.round(3),
            "loudness_dbfs": rng.normal(-22, 5, n).round(2),
            "silence_fraction": np.clip(rng.normal(0.15, 0.08, n), 0, 1).round(4),
            "words_per_minute": wpm.round(2),
            "transcript_words": np.round(wpm * durations / 60).astype(np.int64),
            "caption_words": np.round(wpm * durations / 75).astype(np.int64),
            "faithfulness": np.clip(rng.normal(0.94, 0.05, n), 0, 1).round(4),
        }
    )
    conn = session.connection()
    for table in ("take_figures", "qc_flags"):
        name = conn.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            f"AND conrelid = '{table}'::regclass AND confrelid = 'recordings'::regclass"
        ).scalar_one()
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for index in FIGURE_INDEXES:  # built once after the load, not row by row
        conn.exec_driver_sql(f"DROP INDEX {index}")
    _copy_frame(session, "take_figures", figures)
    for index, metric in zip(FIGURE_INDEXES, [*Z_METRICS, "user_id, recording_id"], strict=True):
        conn.exec_driver_sql(f"CREATE INDEX {index} ON take_figures (project_id, {metric})")

    settings = get_settings()
    rules = {
        "too_short": figures["duration_seconds"] < min_seconds,
        "too_long": figures["duration_seconds"] > max_seconds,
        "mostly_silent": figures["silence_fraction"] > settings.mostly_silent_fraction,
        "quiet": figures["loudness_dbfs"] < settings.quiet_loudness_dbfs,
        "unfaithful": figures["faithfulness"] < 1.0 - settings.faithfulness_threshold,
    }
    flags = pd.concat(
        [
            figures.loc[mask, ["recording_id", "project_id", "user_id"]].assign(flag=f)
            for f, mask in rules.items()
        ]
    )
    _copy_frame(session, "qc_flags", flags[["recording_id", "flag", "project_id", "user_id"]])
    counts = flags.groupby(["project_id", "user_id", "flag"]).size().rename("takes").reset_index()
    anyflag = flags.drop_duplicates("recording_id").groupby(["project_id", "user_id"]).size()
    counts = pd.concat([counts, anyflag.rename("takes").reset_index().assign(flag=ANY_STORED_FLAG)])
    _merge(session, "qc_flag_counts", counts[["project_id", "user_id", "flag", "takes"]], ["takes"])

    histograms = []
    for metric in Z_METRICS:
        values = figures[metric].to_numpy(dtype=float)
        for fine in (True, False):
            if metric in FRACTION_METRICS:
                bucket = np.round(np.clip(values, 0, 1) * FRACTION_STEPS[fine]).astype(np.int64)
            else:
                bucket = 1 + (np.log(values / LOG_BASE) / np.log(LOG_GROWTH[fine])).astype(np.int64)
            grain = pd.DataFrame(
                {
                    "project_id": figures["project_id"],
                    "user_id": ALL_ANNOTATORS if fine else figures["user_id"],
                    "metric": metric,
                    "bucket": bucket,
                    "value": values,
                }
            )
            grouped = grain.groupby(["project_id", "user_id", "metric", "bucket"])["value"]
            histograms.append(grouped.agg(takes="size", total="sum").reset_index())
    _merge(session, "metric_buckets", pd.concat(histograms), ["takes", "total"])
    recount_medians(conn)  # where each annotator's median stands in the merged histograms
    return len(figures)


def _copy_frame(session: Session, table: str, frame: pd.DataFrame, rows: int = 500_000) -> None:
    raw = session.connection().connection.driver_connection
    columns = ", ".join(frame.columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(frame), rows):
            copy.write(
                frame.iloc[start : start + rows].to_csv(sep="\t", header=False, index=False, na_rep="\\N")
            )


def _merge(session: Session, table: str, frame: pd.DataFrame, added: list[str]) -> None:
    """Adds the frame's counts to the table's rows (the slice's, counted by the rebuild)."""
    conn = session.connection()
    conn.exec_driver_sql(f"CREATE TEMP TABLE {table}_load (LIKE {table})")
    _copy_frame(session, f"{table}_load", frame)
    keys = [c for c in frame.columns if c not in added]
    conn.exec_driver_sql(
        f"INSERT INTO {table} SELECT * FROM {table}_load ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added)
    )


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
        figures = seed_qc_shape(session, shape, args.real_takes + 1, 5.0, 120.0)
        session.commit()
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()
    engine.dispose()
    return {
        "seconds": time.perf_counter() - started,
        "daily_rows": daily + int(real_rows or 0),
        "bucket_rows": buckets,
        "figure_rows": figures + args.real_takes,
    }


CALLS = [
    ("live counts, one project (polled)", "/api/stats/live?project=1"),
    ("live counts, all projects", "/api/stats/live"),
    ("stats by annotator, biggest project", "/api/stats?project=1&by=annotator"),
    ("stats by day, biggest project", "/api/stats?project=1&by=day"),
    ("stats by project, all projects", "/api/stats?by=project"),
    ("stats by annotator, all projects", "/api/stats?by=annotator"),
    ("QC, biggest project (first 500 takes)", "/api/qc?project=1"),
    ("QC, biggest project, takes with any flag", "/api/qc?project=1&flag=any"),
    ("QC, biggest project, one outlier flag", "/api/qc?project=1&flag=outlier_words_per_minute_high"),
    ("QC, biggest project, one annotator", "/api/qc?project=1&annotator=2"),
    ("QC, all projects", "/api/qc"),
]


def measure(base: str, requests: int, only: str | None = None) -> list[tuple[str, float, float]]:
    client = login(base, "lead")
    rows = []
    for label, path in CALLS:
        if only and only not in label:
            continue
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
    parser.add_argument(
        "--keep", metavar="NAME", help="build into PostgreSQL database NAME and keep it (for --reuse)"
    )
    parser.add_argument("--reuse", metavar="URL", help="time the calls on a database built with --keep")
    parser.add_argument("--only", help="time only the calls whose label contains this text")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="voicecap-bench-dashboard-"))
    with kept_or_scratch(args, workdir) as url:
        if not args.reuse:
            built = build(url, args)
            print(
                f"built in {built['seconds']:.0f} s: {args.takes:,} takes' summaries "
                f"({built['daily_rows']:,} daily rows, {built['bucket_rows']:,} bucket rows, "
                f"{built['figure_rows']:,} take figures), "
                f"{args.real_takes:,} real takes\n"
            )
            if args.keep:
                print(f"kept: --reuse {url}")
        with serve(url, workdir, "") as (base, _pid):  # the local blob store (no media read here)
            rows = measure(base, args.requests, args.only)
    print("| call | p50 ms | p95 ms |\n|---|---:|---:|")
    for label, p50, p95 in rows:
        print(f"| {label} | {p50:.0f} | {p95:.0f} |")


@contextmanager
def kept_or_scratch(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The database to time: --reuse's, a new kept one (--keep), or a scratch one dropped afterwards."""
    if args.reuse:
        yield args.reuse
        return
    if args.keep:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{args.keep}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{args.keep}"'))
        admin.dispose()
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.keep}"
        return
    with database("postgresql", workdir) as url:
        yield url


if __name__ == "__main__":
    main()
