"""`voicecap transcribe | clean | worker | status | retry`: the batch workers and the queue's figures."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from annotate.cli.common import JSON_OPTION, console, db_session, err_console, fail, print_json, table
from annotate.services import projects as project_service
from db import queue
from db.session import get_engine, session_factory
from db.settings import get_settings

if TYPE_CHECKING:
    from transcribe.worker import BatchReport, StageTotals, Worker

PROJECT_OPTION = typer.Option(None, "--project", help="Only this project (name or id).")
BATCH_OPTION = typer.Option(None, "--batch-size", help="Recordings claimed per batch [settings: batch_size].")
ENGINE_OPTION = typer.Option(None, "--engine", help="faster-whisper or openai-whisper [settings: engine].")
MODEL_OPTION = typer.Option(None, "--model", help="Model name or local path [settings: model].")
DEVICE_OPTION = typer.Option(None, "--device", help="auto, cpu or cuda [settings: device].")
COMPUTE_OPTION = typer.Option(None, "--compute-type", help="e.g. int8, float16 [settings: compute_type].")
ID_OPTION = typer.Option(None, "--id", help="Worker id stamped on claimed rows (default hostname:pid).")


def register(app: typer.Typer) -> None:
    app.command("transcribe")(transcribe)
    app.command("clean")(clean)
    app.command("worker")(worker)
    app.command("status")(status)
    app.command("retry")(retry)


# -- commands ---------------------------------------------------------------------------------------


def transcribe(
    project: str | None = PROJECT_OPTION,
    batch_size: int | None = BATCH_OPTION,
    engine: str | None = ENGINE_OPTION,
    model: str | None = MODEL_OPTION,
    device: str | None = DEVICE_OPTION,
    compute_type: str | None = COMPUTE_OPTION,
    worker_id: str | None = ID_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Transcribe every uploaded recording, then exit (a progress bar shows audio hours, RTF and ETA).

    Other workers may run at the same time; this command waits for rows they hold before it exits.

    Examples: `voicecap transcribe`; `voicecap transcribe --project birds --model small.en --batch-size 16`
    """
    _run(
        ["transcribe"],
        drain=True,
        project=project,
        batch_size=batch_size,
        worker_id=worker_id,
        as_json=as_json,
        engine_options={"engine": engine, "model": model, "device": device, "compute_type": compute_type},
    )


def clean(
    project: str | None = PROJECT_OPTION,
    batch_size: int | None = BATCH_OPTION,
    worker_id: str | None = ID_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Clean every transcribed recording into a caption, then exit (tokens/s and a cost estimate shown).

    The cleaner is settings.cleaner (`rules`, offline, or `llm` at VOICECAP_LLM_BASE_URL).

    Examples: `voicecap clean`; `VOICECAP_CLEANER=llm voicecap clean --project birds`
    """
    _run(["clean"], drain=True, project=project, batch_size=batch_size, worker_id=worker_id, as_json=as_json)


def worker(
    stages: str = typer.Option("transcribe,clean", "--stages", help="Comma-separated: transcribe, clean."),
    project: str | None = PROJECT_OPTION,
    batch_size: int | None = BATCH_OPTION,
    engine: str | None = ENGINE_OPTION,
    model: str | None = MODEL_OPTION,
    device: str | None = DEVICE_OPTION,
    compute_type: str | None = COMPUTE_OPTION,
    worker_id: str | None = ID_OPTION,
    drain: bool = typer.Option(False, "--drain", help="Exit once the stages have nothing left to do."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a worker until stopped. SIGTERM or Ctrl-C finishes the current batch, then exits.

    Start as many as you like, on one machine or many: they share the queue in the database.

    Examples: `voicecap worker`; `voicecap worker --stages transcribe --device cuda --batch-size 16`;
    `docker compose up --scale worker=4`
    """
    from transcribe.stages.factory import parse_stages

    try:
        names = parse_stages(stages)
    except ValueError as exc:
        fail(str(exc))
    _run(
        names,
        drain=drain,
        project=project,
        batch_size=batch_size,
        worker_id=worker_id,
        as_json=as_json,
        engine_options={"engine": engine, "model": model, "device": device, "compute_type": compute_type},
        progress=False,
    )


def status(project: str | None = PROJECT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Recordings per state, throughput, the oldest waiting job, live workers, tokens and failures.

    Examples: `voicecap status`; `voicecap status --json | jq .recordings`
    """
    from annotate.services import status as status_service

    with db_session() as session:
        project_id = project_service.get_project(session, project).id if project else None
        data = status_service.pipeline_status(session, get_settings(), project_id)
    if as_json:
        print_json(data)
        return
    _print_status(data)


def retry(
    failed: bool = typer.Option(False, "--failed", help="Requeue recordings in the failed state."),
    stage: str | None = typer.Option(None, "--stage", help="Only those that failed in this stage."),
    project: str | None = PROJECT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send failed recordings back to the stage they failed in, with fresh attempts.

    Examples: `voicecap retry --failed`; `voicecap retry --failed --stage clean`
    """
    if not failed:
        fail("Say what to retry: `voicecap retry --failed`.")
    try:
        only = queue.get_stage(stage) if stage else None
    except ValueError as exc:
        fail(str(exc))
    with db_session() as session:
        project_id = project_service.get_project(session, project).id if project else None
        count = queue.requeue_failed(session, only, project_id)
    if as_json:
        print_json({"requeued": count})
    else:
        console.print(f"Requeued {count} failed recording{'s' if count != 1 else ''}.")


# -- running a worker -------------------------------------------------------------------------------


def _run(
    stages: list[str],
    *,
    drain: bool,
    project: str | None,
    batch_size: int | None,
    worker_id: str | None,
    as_json: bool,
    engine_options: dict[str, str | None] | None = None,
    progress: bool = True,
) -> None:
    # Imported here, not at the top, so that `voicecap --help` and the other commands load neither
    # alembic nor the transcription and cleaning code.
    from db.migrate import SchemaOutOfDate, check_schema
    from transcribe.stages.factory import build_processors
    from transcribe.worker import Worker, WorkerConfig, default_worker_id

    settings = get_settings()
    show_progress = progress and not as_json and err_console.is_terminal
    _configure_logging(verbose=not show_progress)
    engine = get_engine()
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        fail(str(exc), code=2)
    project_id = None
    if project:
        with db_session() as session:
            project_id = project_service.get_project(session, project).id
    config = WorkerConfig.from_settings(
        settings, worker_id=worker_id or default_worker_id(), batch_size=batch_size, project_id=project_id
    )
    if config.batch_size < 1:
        fail("--batch-size must be at least 1.")
    try:
        processors = build_processors(settings, stages, **(engine_options or {}))
    except Exception as exc:  # a missing model, a bad engine name, a cleaner that cannot start
        fail(f"Cannot start the {'/'.join(stages)} stage: {exc}")
    factory = session_factory(engine)
    with _progress_display(stages, factory, project_id, settings, enabled=show_progress) as on_batch:
        runner = Worker(factory, processors, config, on_batch=on_batch, on_wait=_wait_notice(show_progress))
        try:
            with _graceful_stop(runner):
                totals = runner.run(drain=drain)
        finally:
            for processor in processors:
                processor.close()
    summary: dict[str, Any] = {name: stage_totals.as_dict() for name, stage_totals in totals.items()}
    if runner.left_behind:
        summary["left_behind"] = runner.left_behind
    if as_json:
        print_json(summary)
    else:
        _print_summary(totals, settings)
    if runner.left_behind:  # drained, but takes this model must not transcribe are all that is left
        fail(" ".join(runner.left_behind_messages), code=3)


@contextmanager
def _graceful_stop(runner: Worker) -> Iterator[None]:
    """First SIGTERM/SIGINT: finish the batch, then exit. A second SIGINT aborts (leases expire)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if runner.stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        err_console.print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current batch, then exiting "
            "(Ctrl-C again to abort).[/]"
        )
        runner.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("voicecap")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def _wait_notice(enabled: bool) -> Callable[[dict[str, int]], None]:
    last = [0.0]

    def notice(pending: dict[str, int]) -> None:
        # Once every 30 s: rows leased by other workers, or waiting out a retry backoff.
        if time.monotonic() - last[0] < 30:
            return
        last[0] = time.monotonic()
        waiting = ", ".join(f"{n} {stage}" for stage, n in pending.items() if n)
        message = f"waiting for {waiting} (held by other workers or in retry backoff)"
        if enabled:
            err_console.print(f"[dim]{message}[/]")
        else:
            logging.getLogger("voicecap.worker").info(message)

    return notice


# -- progress ---------------------------------------------------------------------------------------


class _FieldsColumn(ProgressColumn):
    def __init__(self, render: Callable[[Task], str]) -> None:
        super().__init__()
        self._render = render

    def render(self, task: Task) -> Text:
        return Text(self._render(task), style="cyan")


@contextmanager
def _progress_display(
    stages: list[str], factory: Any, project_id: int | None, settings: Any, enabled: bool
) -> Iterator[Callable[[BatchReport], None] | None]:
    if not enabled:
        yield None
        return
    from transcribe.usage import estimate_cost

    started = time.monotonic()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _FieldsColumn(lambda task: task.fields.get("figures", "")),
        console=Console(stderr=True),
    )
    done: dict[str, dict[str, float]] = {name: {} for name in stages}
    tasks: dict[str, Any] = {}
    with factory() as session:
        for name in stages:
            count, seconds = queue.backlog(session, queue.get_stage(name), project_id)
            total = seconds / 3600 if name == "transcribe" else count
            tasks[name] = progress.add_task(name, total=max(total, 1e-9), figures="")

    def on_batch(report: BatchReport) -> None:
        figures = done[report.stage]
        for key, value in report.units.items():
            figures[key] = figures.get(key, 0.0) + value
        figures["finished"] = figures.get("finished", 0.0) + report.finished
        with factory() as session:
            count, seconds = queue.backlog(session, queue.get_stage(report.stage), project_id)
        elapsed = max(time.monotonic() - started, 1e-6)
        if report.stage == "transcribe":
            hours = figures.get("audio_seconds", 0.0) / 3600
            rtf = elapsed / figures["audio_seconds"] if figures.get("audio_seconds") else 0.0
            eta = _eta(seconds * rtf if rtf else None)
            text = f"{hours:.3f} h audio  RTF {rtf:.3f}  {int(figures['finished'])} recordings  ETA {eta}"
            progress.update(tasks[report.stage], completed=hours, total=hours + seconds / 3600, figures=text)
        else:
            tokens = figures.get("prompt_tokens", 0.0) + figures.get("completion_tokens", 0.0)
            cost = estimate_cost(
                int(figures.get("prompt_tokens", 0)), int(figures.get("completion_tokens", 0)), settings
            )
            finished = figures["finished"]
            eta = _eta(count * elapsed / finished if finished else None)
            text = f"{tokens / elapsed:.0f} tokens/s" + (f"  ${cost:.4f}" if cost is not None else "")
            text += f"  {int(finished)} recordings  ETA {eta}"
            progress.update(tasks[report.stage], completed=finished, total=finished + count, figures=text)

    with progress:
        yield on_batch


def _print_summary(totals: dict[str, StageTotals], settings: Any) -> None:
    from transcribe.usage import estimate_cost

    for name, stage_totals in totals.items():
        line = (
            f"{name}: {stage_totals.done + stage_totals.duplicate} done, {stage_totals.failed} failed, "
            f"{stage_totals.retried} to retry"
        )
        units = stage_totals.units
        if units.get("audio_seconds"):
            rtf = stage_totals.wall_seconds / units["audio_seconds"]
            line += f"; {units['audio_seconds'] / 3600:.3f} h of audio, real-time factor {rtf:.3f}"
        if units.get("merged"):
            line += f"; {int(units['merged'])} merged captions"
        if units.get("prompt_tokens") or units.get("completion_tokens"):
            prompt, completion = int(units.get("prompt_tokens", 0)), int(units.get("completion_tokens", 0))
            line += f"; {prompt + completion} tokens"
            cost = estimate_cost(prompt, completion, settings)
            if cost is not None:
                line += f" (about ${cost:.4f})"
        console.print(line)


def _print_status(data: dict[str, Any]) -> None:
    counts = data["recordings"]
    console.print(table("Recordings", ["state", "count"], [[state, n] for state, n in counts.items()]))
    rows = []
    for window, figures in data["throughput"].items():
        rtf = figures["engine_real_time_factor"]
        rows.append(
            [
                window.replace("_", " "),
                figures["transcribed"],
                f"{figures['audio_hours']:.3f}",
                "" if rtf is None else f"{rtf:.3f}",
                figures["captioned"],
                figures["merged"],
            ]
        )
    console.print(
        table(
            "Throughput", ["window", "transcribed", "audio hours", "engine RTF", "captioned", "merged"], rows
        )
    )
    for stage, oldest in data["oldest_waiting"].items():
        if oldest:
            console.print(
                f"Oldest waiting for {stage}: recording {oldest['recording_id']}, "
                f"{_age(oldest['age_seconds'])}"
            )
    if data["workers"]:
        console.print(
            table(
                "Live workers",
                ["worker", "state", "held"],
                [[w["worker"], w["status"], w["held"]] for w in data["workers"]],
            )
        )
    tokens = data["tokens"]
    if tokens["prompt"] or tokens["completion"]:
        cost = tokens["cost_estimate"]
        console.print(
            f"Tokens: {tokens['prompt']} prompt + {tokens['completion']} completion"
            + (f", about ${cost:.4f}" if cost is not None else "")
        )
    if data["failures"]:
        console.print(
            table(
                "Recent failures (voicecap retry --failed)",
                ["recording", "attempts", "error"],
                [[f["recording_id"], f["attempts"], f["error"]] for f in data["failures"]],
            )
        )


def _eta(seconds: float | None) -> str:
    """Time left at this run's own pace (rich's column needs steadier updates than one per batch)."""
    if seconds is None:
        return "-:--:--"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
