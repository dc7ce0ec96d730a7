"""`voicecap llm check`: probe the LLM cleaner's endpoint and recommend the settings that suit it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from annotate.cli.common import JSON_OPTION, console, print_json, table
from db.settings import get_settings

if TYPE_CHECKING:
    from annotate.services.llm_check import EndpointCheck

llm_app = typer.Typer(help="The LLM cleaner's endpoint: what it supports.", no_args_is_help=True)


@llm_app.command("check")
def check(
    base_url: str | None = typer.Option(None, "--url", help="Endpoint (default VOICECAP_LLM_BASE_URL)."),
    model: str | None = typer.Option(None, "--model", help="Model (default VOICECAP_LLM_MODEL)."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds per call (default VOICECAP_LLM_TIMEOUT_SECONDS)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Probe an OpenAI-compatible endpoint: reachable, model listed, which json modes give a caption
    (json_schema, json_object, none), how long each took; then the settings to use.

    Exits 1 when no mode gives a caption.

    Example: `VOICECAP_LLM_BASE_URL=http://127.0.0.1:8080/v1 voicecap llm check --model smollm2`
    """
    # Imported here: the service loads the openai client, which other commands do not need.
    from annotate.services.llm_check import check_endpoint

    overrides = {"llm_base_url": base_url, "llm_model": model, "llm_timeout_seconds": timeout}
    settings = get_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    result = check_endpoint(settings)
    if as_json:
        print_json(result.as_dict())
    else:
        _show(result)
    if not result.usable:
        raise typer.Exit(1)


def _show(result: EndpointCheck) -> None:
    listed = {True: "yes", False: "no", None: "unknown (no model list)"}[result.model_listed]
    console.print(f"Endpoint [bold]{result.base_url}[/], model [bold]{result.model}[/]")
    console.print(f"  reachable: {'yes' if result.reachable else 'no'}; model listed: {listed}")
    if result.list_seconds is not None:
        console.print(f"  models listed in {result.list_seconds:.2f} s: {', '.join(result.models) or 'none'}")
    if result.modes:
        rows = [[p.mode, p.outcome, f"{p.seconds:.2f} s", p.detail[:160]] for p in result.modes]
        console.print(table("json modes", ["mode", "outcome", "latency", "caption or error"], rows))
    for problem in result.problems:
        console.print(f"[bold red]Problem:[/] {problem}")
    if result.recommended:
        console.print("Recommended settings:")
        for name, value in result.recommended.items():
            console.print(f"  export {name}={value}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(llm_app, name="llm")
