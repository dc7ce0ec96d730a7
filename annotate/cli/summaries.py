"""`voicecap stats rebuild [PROJECT]`: recompute the summary tables the dashboard reads from scratch."""

from __future__ import annotations

from dataclasses import asdict

from annotate.cli.common import console, db_session, print_json
from annotate.services.projects import get_project

REBUILD = "rebuild"


def rebuild_command(project: str | None, as_json: bool) -> None:
    """Recounts one project's summaries (or every project's) from its takes, captions, reviews and skips.

    Also judges every take's QC flags again with the settings of now. Needed once after upgrading a
    database that already holds takes (and after changing the QC settings), and safe at any time: the
    old rows are replaced in one transaction.
    """
    from annotate.services import summaries

    with db_session() as session:
        project_id = get_project(session, project).id if project else None
        report = summaries.rebuild(session, project_id)
    if as_json:
        print_json(asdict(report))
        return
    scope = f"project {project}" if project else "all projects"
    console.print(f"Rebuilt the summaries of {scope}: {report.takes} takes in {report.summary_rows} rows.")
