"""`voicecap labelstudio …`: push captions to Label Studio, pull reviewers' edits back, write a tasks file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from annotate.cli.common import JSON_OPTION, console, db_session, fail, print_json
from annotate.errors import VoicecapError
from annotate.security import media_links
from annotate.services.permissions import check_reviewer
from annotate.services.projects import get_project
from annotate.services.users import get_user
from db.session import get_engine
from db.settings import get_settings

if TYPE_CHECKING:
    from annotate.services.export import ExportFilter

labelstudio_app = typer.Typer(
    help="Review captions in Label Studio: push tasks with the caption pre-filled, pull the edits back.",
    no_args_is_help=True,
)

STATE_OPTION = typer.Option(
    "captioned", "--state", help="Which images: captioned (default: anything to review), approved or all."
)
MEDIA_OPTION = typer.Option(
    "url",
    "--media",
    help="url (the only mode): signed links under VOICECAP_PUBLIC_BASE_URL that Label Studio loads "
    "without a voicecap login, valid VOICECAP_MEDIA_LINK_DAYS.",
)
LS_PROJECT_OPTION = typer.Option(
    None, "--ls-project", help="Label Studio project id (default: the one titled 'voicecap: PROJECT')."
)
URL_OPTION = typer.Option(None, "--url", help="Label Studio URL (default VOICECAP_LABELSTUDIO_URL).")


def _filter(project_id: int, state: str) -> ExportFilter:
    from annotate.services.export import STATES, ExportFilter

    if state not in STATES:
        fail(f"Unknown state {state!r}; use one of {', '.join(STATES)}.")
    return ExportFilter(project_id=project_id, state=state)


def _client(url: str | None):
    # The service is imported by the commands that use it: it pulls in the review service and its text
    # rules, which `voicecap --help` and the other commands do not need.
    from annotate.services import labelstudio as service

    settings = get_settings()
    try:
        return service.connect(url or settings.labelstudio_url, settings.labelstudio_api_key)
    except VoicecapError as exc:
        fail(exc.message)


def _ls_error(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    if status is not None:
        return f"Label Studio answered {status}: {body}"
    return f"Cannot reach Label Studio: {exc}"


@labelstudio_app.command("push")
def push(
    project: str = typer.Argument(..., help="Project name or id."),
    state: str = STATE_OPTION,
    media: str = MEDIA_OPTION,
    ls_project: int | None = LS_PROJECT_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create (or update) a Label Studio project whose tasks are the images, caption pre-filled.

    Each task shows the image, plays the audio, shows the transcript, and holds the caption as a
    prediction in an editable TextArea. Run it again after new captions: it adds tasks for new images
    and a new prediction where a caption changed.

    Example: `VOICECAP_LABELSTUDIO_API_KEY=… VOICECAP_PUBLIC_BASE_URL=http://127.0.0.1:8000
    voicecap labelstudio push harbour`
    """
    from annotate.services import labelstudio as service

    settings = get_settings()
    with db_session() as session:
        record = get_project(session, project)
    flt = _filter(record.id, state)
    client = _client(url)
    try:
        links = service.check_links(media_links(settings), media)
        result = service.push(get_engine(), record, flt, links, client, ls_project)
    except VoicecapError as exc:
        fail(exc.message)
    except Exception as exc:  # the SDK's HTTP and connection errors
        fail(_ls_error(exc))
    data = result.as_dict()
    if as_json:
        print_json(data)
        return
    base = (url or settings.labelstudio_url).rstrip("/")
    console.print(
        f"Label Studio project {data['ls_project_id']}{' (new)' if data['created_project'] else ''}: "
        f"{data['tasks_created']} tasks created, {data['predictions_added']} captions updated, "
        f"{data['unchanged']} unchanged. Open {base}/projects/{data['ls_project_id']}"
    )


@labelstudio_app.command("pull")
def pull(
    project: str = typer.Argument(..., help="Project name or id."),
    reviewer: str = typer.Option(..., "--as", help="The voicecap lead the decisions are recorded under."),
    ls_project: int | None = LS_PROJECT_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Bring Label Studio reviewers' submissions back as reviews.

    The `decision` choice maps to a review: approve (a changed caption is stored as an edited caption,
    approved, the original superseded; no choice means approve), reject, send back (re-clean or
    re-transcribe). A skipped task is reported and changes nothing. Each annotation is applied once,
    however often you pull.

    Example: `voicecap labelstudio pull harbour --as lena`
    """
    from annotate.services import labelstudio as service

    client = _client(url)
    with db_session() as session:
        record = get_project(session, project)
        user = check_reviewer(get_user(session, reviewer))
        try:
            result = service.pull(session, record, client, user, ls_project)
        except VoicecapError:
            raise  # db_session turns it into a message
        except Exception as exc:  # the SDK's HTTP and connection errors
            fail(_ls_error(exc))
        data = result.as_dict()
    if as_json:
        print_json(data)
        return
    console.print(
        f"Label Studio project {data['ls_project_id']}: {data['approved']} approved, "
        f"{data['edited']} edited, {data['rejected']} rejected, {data['sent_back']} sent back, "
        f"{data['already']} already pulled, {data['point_sets']} new point set versions, "
        f"{len(data['skipped'])} skipped."
    )
    for line in data["skipped"][:20]:
        console.print(f"  skipped {line}")


@labelstudio_app.command("tasks-file")
def tasks_file(
    project: str = typer.Argument(..., help="Project name or id."),
    out: Path = typer.Option(..., "--out", "-o", help="JSON file to write (Label Studio's import format)."),
    state: str = STATE_OPTION,
    media: str = MEDIA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write Label Studio tasks (with the caption as a prediction) to a JSON file, to import by hand.

    Create a Label Studio project with the labeling config printed by `voicecap labelstudio config`,
    then Import this file.

    Example: `voicecap labelstudio tasks-file harbour --out harbour-tasks.json`
    """
    from annotate.services import labelstudio as service

    settings = get_settings()
    with db_session() as session:
        record = get_project(session, project)
    flt = _filter(record.id, state)
    try:
        links = service.check_links(media_links(settings), media)
        count = service.write_tasks_file(get_engine(), record, flt, links, out)
    except VoicecapError as exc:
        fail(exc.message)
    if as_json:
        print_json({"tasks": count, "path": str(out)})
    else:
        console.print(f"Wrote {count} tasks to {out}.")


@labelstudio_app.command("config")
def config(
    project: str | None = typer.Argument(
        None, help="A project name or id: its config (a narrate or point project's adds KeyPointLabels)."
    ),
) -> None:
    """Print the labeling config the pushed projects use (for a project created by hand).

    Example: `voicecap labelstudio config > label_config.xml`, or `voicecap labelstudio config deck` for a
    point project (its labels as KeyPointLabels on the image).
    """
    from annotate.services import labelstudio as service

    if project is None:
        print(service.LABEL_CONFIG)
        return
    with db_session() as session:
        record = get_project(session, project)
        print(service.label_config(get_engine(), record))


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(labelstudio_app, name="labelstudio")
