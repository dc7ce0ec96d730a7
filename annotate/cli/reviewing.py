"""`voicecap stats`, `voicecap qc` and `voicecap review …`: the data lead's figures and decisions."""

from __future__ import annotations

from typing import Any

import typer

from annotate.cli import summaries as summaries_cli
from annotate.cli.common import JSON_OPTION, console, db_session, fail, print_json, table
from annotate.services.permissions import check_reviewer
from annotate.services.projects import get_project
from annotate.services.users import get_user
from db.models import CaptionStatus, User
from db.settings import get_settings

review_app = typer.Typer(help="Review captions from scripts (the web page at /review does the same).")

BY_OPTION = typer.Option("annotator", "--by", help="Group by annotator, project or day.")
PROJECT_ARGUMENT = typer.Argument(None, help="Project name or id; all projects when left out.")

STATS_COLUMNS = [
    ("key", ""),
    ("images_done", "images"),
    ("takes", "takes"),
    ("audio_hours", "audio h"),
    ("median_seconds_per_take", "median s/take"),
    ("words_per_caption", "words/caption"),
    ("reviewed", "reviewed"),
    ("approval_rate", "approved"),
    ("rejection_rate", "rejected"),
    ("takes_per_day", "takes/day"),
]


def _fmt(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if column.endswith("_rate"):
        return f"{value:.0%}"
    if column == "audio_hours":
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def stats_command(
    project: str | None = PROJECT_ARGUMENT,
    rebuild_project: str | None = typer.Argument(
        None, help="After `rebuild`: the project to recount (all when left out).", show_default=False
    ),
    by: str = BY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per annotator, project or day: images done, audio hours, median seconds per take, words per
    caption, approval and rejection rates, takes per day. `voicecap stats rebuild [PROJECT]` recounts
    the summaries these figures are read from (once after upgrading a database that holds takes).

    Examples: `voicecap stats`; `voicecap stats Harbour --by day`; `voicecap stats --by project --json`;
    `voicecap stats rebuild Harbour`
    """
    if project == summaries_cli.REBUILD:
        summaries_cli.rebuild_command(rebuild_project, as_json)
        return
    if rebuild_project is not None:
        fail(f"Unexpected argument {rebuild_project!r}; `voicecap stats rebuild PROJECT` recounts a project.")
    from annotate.services import stats  # pandas: loaded only by the commands that need it

    if by not in stats.GROUPINGS:
        fail(f"--by must be one of {', '.join(stats.GROUPINGS)}.")
    with db_session() as session:
        project_id = get_project(session, project).id if project else None
        result = stats.stats(session, project_id, by)
        result["live"] = stats.live_counts(session, project_id)
    if as_json:
        print_json(result)
        return
    rows = [[_fmt(c, row[c]) for c, _ in STATS_COLUMNS] for row in result["rows"]]
    totals = result["totals"]
    rows.append([_fmt(c, totals.get(c)) if c != "key" else "[bold]all[/]" for c, _ in STATS_COLUMNS])
    headers = [by if c == "key" else label for c, label in STATS_COLUMNS]
    console.print(table(f"voicecap stats by {by}" + (f" — {project}" if project else ""), headers, rows))
    live = result["live"]
    console.print(
        f"Review queue: {live['review_queue']} pending ({live['flagged_pending']} flagged); "
        f"recordings: {', '.join(f'{k} {v}' for k, v in live['recordings'].items() if v)}"
    )


def qc_command(
    project: str | None = PROJECT_ARGUMENT,
    flag: str | None = typer.Option(None, "--flag", help="Only takes with this QC flag (or `any`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """QC: takes breaking the project's rules or far from its typical take, and annotators whose median
    words per minute, seconds, silence, words or faithfulness stand out (robust z-score >= 3.5).

    Examples: `voicecap qc Harbour`; `voicecap qc --flag any --json`
    """
    with db_session() as session:
        project_id = get_project(session, project).id if project else None
        from annotate.services import qc  # pandas: loaded only by the commands that need it

        report = qc.qc_report(session, get_settings(), qc.QcFilter(project_id=project_id, flag=flag))
    if as_json:
        print_json(report)
        return
    annotators = [
        [
            a["annotator"],
            a["takes"],
            a["flagged_takes"],
            _fmt("", a["median_words_per_minute"]),
            _fmt("", a["median_duration_seconds"]),
            _fmt("silence_rate", a["median_silence_fraction"]),
            ", ".join(a["outliers"]) or "–",
        ]
        for a in report["annotators"]
    ]
    console.print(
        table(
            "Annotators against their project",
            ["annotator", "takes", "flagged", "median wpm", "median s", "median silence", "outliers"],
            annotators,
        )
    )
    flagged = [t for t in report["takes"] if t["flags"]]
    console.print(
        table(
            f"Flagged takes ({len(flagged)} of {report['total']} takes; up to 50 shown)",
            ["recording", "annotator", "seconds", "wpm", "faithfulness", "flags"],
            [
                [
                    t["recording_id"],
                    t["annotator"],
                    _fmt("", t["duration_seconds"]),
                    _fmt("", t["words_per_minute"]),
                    "–" if t["faithfulness"] is None else f"{t['faithfulness']:.2f}",
                    ", ".join(t["flags"]),
                ]
                for t in flagged[:50]
            ],
        )
    )


def _reviewer(session: Any, name: str | None) -> User | None:
    if name is None:
        return None
    return check_reviewer(get_user(session, name))


STATE_HELP = f"{', '.join(CaptionStatus)} or all."
AS_OPTION = typer.Option(None, "--as", help="The lead or admin to record as reviewer.")


def _decide(
    caption_id: int, decision: str, reviewer: str | None, reason: str, as_json: bool, text: str | None = None
) -> None:
    # The review service loads the faithfulness check's text rules (slow to compile): only on use.
    from annotate.services import review

    with db_session() as session:
        user = _reviewer(session, reviewer)
        result = review.decide(session, caption_id, user, decision, text=text, reason=reason, source="cli")
        answer = review.decision_dict(result, user.name if user else None)
    if as_json:
        print_json(answer)
        return
    extra = f"; new caption {answer['new_caption']['id']}" if answer["new_caption"] else ""
    console.print(f"Caption {caption_id}: {decision} → {answer['caption']['status']}{extra}.")


@review_app.command("approve")
def approve(
    caption_id: int = typer.Argument(...), reviewer: str | None = AS_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Approve a caption.

    Example: `voicecap review approve 42 --as lena`
    """
    _decide(caption_id, "approve", reviewer, "", as_json)


@review_app.command("reject")
def reject(
    caption_id: int = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (required)."),
    reviewer: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Reject a caption with a reason.

    Example: `voicecap review reject 42 --reason "describes another image" --as lena`
    """
    _decide(caption_id, "reject", reviewer, reason, as_json)


@review_app.command("send-back")
def send_back(
    caption_id: int = typer.Argument(...),
    stage: str = typer.Option("retranscribe", "--to", help="retranscribe or reclean."),
    reason: str = typer.Option("", "--reason"),
    reviewer: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a caption's take back for re-transcription or re-cleaning (a new revision; history is kept).

    Example: `voicecap review send-back 42 --to reclean`
    """
    if stage not in ("retranscribe", "reclean"):
        fail("--to must be retranscribe or reclean.")
    _decide(caption_id, stage, reviewer, reason, as_json)


@review_app.command("queue")
def queue(
    project: str | None = typer.Option(None, "--project", help="Project name or id."),
    flag: str | None = typer.Option(None, "--flag", help="flagged, unflagged or a flag name."),
    state: str = typer.Option(
        CaptionStatus.pending.value, "--state", help=f"{', '.join(CaptionStatus)} or all."
    ),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """List captions waiting for review, oldest first.

    Example: `voicecap review queue --project Harbour --flag flagged`
    """
    from annotate.services import review

    with db_session() as session:
        project_id = get_project(session, project).id if project else None
        f = review.QueueFilter(
            project_id=project_id, flag=flag, status=None if state == "all" else state, limit=limit
        )
        result = review.list_queue(session, f)
    if as_json:
        print_json(result)
        return
    rows = [
        [
            i["id"],
            i["annotator"] or "–",
            i["status"],
            ", ".join(map(str, i["flags"])) or "–",
            i["preview"][:70],
        ]
        for i in result["items"]
    ]
    console.print(
        table(
            f"Review queue ({result['total']} matching)",
            ["caption", "annotator", "state", "flags", "text"],
            rows,
        )
    )


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_command)
    app.command("qc")(qc_command)
    app.add_typer(review_app, name="review")
