"""`voicecap project …`: create, list and show projects."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from annotate.cli.common import JSON_OPTION, console, db_session, print_json, table
from annotate.services import projects as service

project_app = typer.Typer(help="Create and inspect annotation projects.", no_args_is_help=True)


@project_app.command("create")
def create(
    name: str = typer.Argument(..., help="Unique project name."),
    questions: Path | None = typer.Option(
        None, "--questions", help="YAML/JSON file with the guiding questions (default: PixMo-Cap's set)."
    ),
    instructions: str | None = typer.Option(None, "--instructions", help="Text shown above the questions."),
    min_seconds: float = typer.Option(30.0, "--min-seconds", help="Shortest accepted recording."),
    max_seconds: float = typer.Option(
        120.0, "--max-seconds", help="Longest recording (the recorder stops here)."
    ),
    per_image: int = typer.Option(1, "--per-image", help="How many annotators describe each image."),
    language: str = typer.Option("en", "--language", help="Spoken language code, e.g. en."),
    interface_language: str = typer.Option(
        "en", "--interface-language", help="The annotator page's language (a catalog in web/i18n/: en, ar)."
    ),
    caption_language: str | None = typer.Option(
        None, "--caption-language", help="Write captions in this language (llm cleaner); default: as spoken."
    ),
    mode: str = typer.Option(
        "describe",
        "--mode",
        help="describe (speak), narrate (speak while the pointer is traced) or point (point at labels).",
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="point mode: what to point at; a text file (one label a line) or a JSON/YAML list.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a project.

    Examples: `voicecap project create birds --min-seconds 45 --max-seconds 90 --per-image 3`;
    `voicecap project create street --questions questions.yaml`;
    `voicecap project create souk --language ar --interface-language ar --caption-language en`;
    `voicecap project create harbour --mode point --labels labels.txt`
    """
    with db_session() as session:
        spec = service.ProjectSpec(
            name=name,
            questions=service.load_questions(questions) if questions else None,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            per_image=per_image,
            language=language,
            interface_language=interface_language,
            caption_language=caption_language,
            mode=service.parse_mode(mode),
            labels=service.load_labels(labels) if labels else None,
        )
        if instructions:
            spec.instructions = instructions
        data = service.project_dict(service.create_project(session, spec), 0)
    if as_json:
        print_json(data)
    else:
        console.print(f"Created {data['mode']} project [bold]{data['name']}[/] (id {data['id']}).")
        if data["mode"] == "point" and not data["labels"]:
            console.print("No labels: every image must bring its own (a `labels` column in the manifest).")


@project_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """List projects with their image counts.

    Example: `voicecap project list`
    """
    with db_session() as session:
        rows = [service.project_dict(p, n) for p, n in service.list_projects(session)]
    if as_json:
        print_json({"projects": rows})
        return
    console.print(
        table(
            "Projects",
            ["id", "name", "mode", "images", "seconds", "per image", "language", "labels"],
            [
                [
                    r["id"],
                    r["name"],
                    r["mode"],
                    r["images"],
                    f"{r['min_seconds']:g}-{r['max_seconds']:g}",
                    r["per_image"],
                    r["language"],
                    escape(", ".join(r["labels"])),
                ]
                for r in rows
            ],
        )
    )


@project_app.command("show")
def show(name: str = typer.Argument(..., help="Project name or id."), as_json: bool = JSON_OPTION) -> None:
    """Show a project's settings and guiding questions.

    Example: `voicecap project show birds --json`
    """
    with db_session() as session:
        project = service.get_project(session, name)
        counts = dict((p.id, n) for p, n in service.list_projects(session))
        data = service.project_dict(project, counts.get(project.id, 0))
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['name']}[/] (id {data['id']}), {data['images']} images")
    console.print(
        f"Recording {data['min_seconds']:g}-{data['max_seconds']:g} s, "
        f"{data['per_image']} annotator(s) per image, language {data['language']}"
    )
    console.print(
        f"Interface language {data['interface_language']}, "
        f"captions in {data['caption_language'] or 'the language spoken'}"
    )
    labels = f"; labels: {escape(', '.join(data['labels']))}" if data["labels"] else ""
    console.print(f"Mode {data['mode']}{labels}")
    console.print(f"\n{data['instructions']}\n")
    for i, question in enumerate(data["questions"], 1):
        console.print(f"  {i}. {question}")


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
