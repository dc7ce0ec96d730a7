"""The worker loop: claim a batch, process it outside any transaction, store each result with its state.

State is the queue (db/queue.py). One iteration, per stage:

1. claim up to ``batch_size`` ready rows in one short transaction and commit (the rows now carry our
   ``claimed_by`` and a lease);
2. ``load`` their inputs in a short read transaction;
3. ``process`` them with no transaction open, while a heartbeat thread extends the lease of the rows
   still held (a batch of long recordings can outlast one lease);
4. for each recording, in one transaction: ``store`` the result and ``complete()`` the row. ``complete``
   is fenced by ``claimed_by``: False means the lease expired and someone else took the row, so the
   transaction rolls back and nothing of ours is kept. A unique-key violation means the result is
   already stored (someone else finished it): the row is completed if we still hold it, else left alone.
   A failure calls ``fail()``: back to the pool after a backoff, or ``failed`` after max_attempts errors.

A worker that dies (kill -9, power loss, a preempted machine) simply stops heartbeating; its leases run
out and the next claim returns the rows to the pool, each to be claimed on its own from then on, so a
row that kills its worker is found without blaming its batch-mates (db/queue.py, expire_leases).
``stop()`` (SIGTERM/SIGINT in the CLI) lets the current batch finish and store its results, then the
loop exits.

Drain mode (``voicecap transcribe``) exits only when the stage has nothing left: no ready rows, none
waiting out a retry backoff and none leased by other workers. Rows leased by a worker that died come
back when their lease runs out, and rows in backoff come back after it, so exiting earlier would leave
work behind that nobody is running for. While it waits, ``on_wait`` is told what it is waiting for.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db import queue
from db.models import RecordingStatus
from db.settings import Settings
from transcribe.language_policy import left_behind_message, may_transcribe
from transcribe.stages.base import PermanentError, StageProcessor, describe_error

log = logging.getLogger("voicecap.worker")

DONE = "done"  # stored and completed by this worker
DUPLICATE = "duplicate"  # already stored by someone else; completed by us
RETRY = "retry"  # failed, back to the pool after a backoff
FAILED = "failed"  # failed for good
LOST = "lost"  # our lease ran out and another worker owns the row; nothing of ours was kept


def default_worker_id() -> str:
    """hostname:pid is unique across containers (each has its own hostname) and processes."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerConfig:
    worker_id: str = field(default_factory=default_worker_id)
    batch_size: int = 8
    lease_seconds: float = 300.0
    max_attempts: int = 3
    max_crashes: int = 10
    backoff_seconds: float = 30.0
    poll_seconds: float = 2.0
    project_id: int | None = None
    crash_on_recording: int | None = None  # tests only: die like a preempted machine on this row

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "batch_size": settings.batch_size,
            "lease_seconds": float(settings.lease_seconds),
            "max_attempts": settings.max_attempts,
            "max_crashes": settings.max_crashes,
            "crash_on_recording": settings.test_crash_on_recording,
            "backoff_seconds": settings.retry_backoff_seconds,
            "poll_seconds": settings.worker_poll_seconds,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class BatchReport:
    """What one batch of one stage did; handed to the progress callback."""

    stage: str
    outcomes: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def count(self, *outcomes: str) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome in outcomes)

    @property
    def finished(self) -> int:
        """Rows that left the stage for good (stored or failed), i.e. progress."""
        return self.count(DONE, DUPLICATE, FAILED)


@dataclass
class StageTotals:
    done: int = 0
    duplicate: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    batches: int = 0
    units: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def add(self, report: BatchReport) -> None:
        self.done += report.count(DONE)
        self.duplicate += report.count(DUPLICATE)
        self.retried += report.count(RETRY)
        self.failed += report.count(FAILED)
        self.lost += report.count(LOST)
        self.batches += 1
        self.wall_seconds += report.wall_seconds
        for key, value in report.units.items():
            self.units[key] = self.units.get(key, 0.0) + value

    def as_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "duplicate": self.duplicate,
            "retried": self.retried,
            "failed": self.failed,
            "lost": self.lost,
            "batches": self.batches,
            "wall_seconds": round(self.wall_seconds, 3),
            **{key: round(value, 3) for key, value in self.units.items()},
        }


class _LeaseLost(Exception):
    pass


class _Heartbeat(threading.Thread):
    """Extends the lease on the rows of the current batch that are not yet stored."""

    def __init__(
        self, factory: sessionmaker[Session], stage: queue.Stage, config: WorkerConfig, ids: Iterable[int]
    ) -> None:
        super().__init__(name=f"heartbeat-{stage.name}", daemon=True)
        self._factory = factory
        self._stage = stage
        self._config = config
        self._held = set(ids)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        # Three beats per lease: one slow beat (a busy database) still lands before expiry.
        self.interval = max(config.lease_seconds / 3.0, 0.2)

    def release(self, recording_id: int) -> None:
        with self._lock:
            self._held.discard(recording_id)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=30)

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            with self._lock:
                ids = sorted(self._held)
            if not ids:
                continue
            try:
                with self._factory() as session, session.begin():
                    held = queue.heartbeat(
                        session, self._stage, self._config.worker_id, ids, self._config.lease_seconds
                    )
                if held < len(ids):
                    log.warning(
                        "%s: lost the lease on %d of %d rows", self._stage.name, len(ids) - held, len(ids)
                    )
            except Exception as exc:  # a database blip must not kill the batch; the next beat retries
                log.warning("%s: heartbeat failed: %s", self._stage.name, describe_error(exc))


class Worker:
    """Runs one or more stage processors against the queue. Not thread-safe; one per process."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        processors: list[StageProcessor],
        config: WorkerConfig,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
        on_wait: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        if not processors:
            raise ValueError("a worker needs at least one stage")
        self.factory = factory
        self.processors = processors
        self.config = config
        self.on_batch = on_batch
        self.on_wait = on_wait
        self.totals: dict[str, StageTotals] = {p.stage.name: StageTotals() for p in processors}
        self._stop = threading.Event()
        self._dirty: set[str] = set()  # stages that finished rows since their last sweep
        # After a drain: takes of languages this worker's model must not transcribe, per language.
        self.left_behind: dict[str, int] = {}
        self.left_behind_messages: list[str] = []  # what to run for them

    # -- control ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, then leave run(). Safe to call from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, drain: bool = False) -> dict[str, StageTotals]:
        """Work until stop(); with drain=True, also until the stages have nothing left (see module doc)."""
        log.info(
            "worker %s started: stages %s, batch %d, lease %ss",
            self.config.worker_id,
            ",".join(p.stage.name for p in self.processors),
            self.config.batch_size,
            self.config.lease_seconds,
        )
        for processor in self.processors:
            if getattr(processor, "claim_languages", None) is not None:
                log.info(
                    "%s: model %s is English-only; takes of other languages' projects are left for a "
                    "worker with a multilingual model",
                    processor.stage,
                    _model_of(processor),
                )
        outage = 0.0  # seconds to wait after a database error, doubling up to a minute
        while not self._stop.is_set():
            try:
                worked = self._iteration()
                if not worked:
                    self._sweep()
                    if drain:
                        waiting = self.pending()
                        if not any(waiting.values()):
                            self.left_behind = self._left_behind()
                            break
                        if self.on_wait:
                            self.on_wait(waiting)
                outage = 0.0
            except DBAPIError as exc:
                # The database went away (restart, failover, network). Rows of an interrupted batch
                # come back when their lease runs out; keep trying instead of dying.
                outage = min(max(outage * 2, self.config.poll_seconds, 1.0), 60.0)
                log.error("database error, retrying in %.0f s: %s", outage, describe_error(exc))
                self._stop.wait(outage)
                continue
            if not worked:
                self._stop.wait(self.config.poll_seconds)
        log.info("worker %s stopped", self.config.worker_id)
        return self.totals

    def _iteration(self) -> bool:
        """One claim (and batch) per stage, in pipeline order; True if any stage had work."""
        worked = False
        for processor in self.processors:
            if self._stop.is_set():
                break
            ids = self.claim(processor)
            if ids:
                worked = True
                self.run_batch(processor, ids)
        return worked

    def _sweep(self) -> None:
        """Idle, and a stage finished rows since its last sweep: run its processor's sweep."""
        for processor in self.processors:
            name = processor.stage.name
            if processor.sweep is None or name not in self._dirty:
                continue
            self._dirty.discard(name)
            report = BatchReport(stage=name)
            started = time.perf_counter()
            try:
                report.units = processor.sweep.run(self.factory, self.config.project_id)
            except Exception:
                log.exception("%s: sweep failed", name)
            report.wall_seconds = time.perf_counter() - started
            for key, value in report.units.items():
                totals = self.totals[name].units
                totals[key] = totals.get(key, 0.0) + value
            if self.on_batch:
                self.on_batch(report)

    # -- one batch --------------------------------------------------------------------------------

    def claim(self, processor: StageProcessor) -> list[int]:
        with self.factory() as session, session.begin():
            return queue.claim(
                session,
                processor.stage,
                self.config.worker_id,
                max(self.config.batch_size, processor.min_batch_size),
                self.config.lease_seconds,
                self.config.max_crashes,
                project_id=self.config.project_id,
                languages=processor.claim_languages,
            )

    def run_batch(self, processor: StageProcessor, ids: list[int]) -> BatchReport:
        """Process rows this worker has claimed, storing or failing each one."""
        stage = processor.stage
        report = BatchReport(stage=stage.name)
        started = time.perf_counter()
        log.info("%s: claimed %s", stage.name, _id_list(ids))
        heartbeat = _Heartbeat(self.factory, stage, self.config, ids)
        heartbeat.start()
        try:
            inputs, outputs = self._load_and_process(processor, ids)
            for recording_id in ids:
                item = inputs.get(recording_id)
                output = outputs.get(recording_id, RuntimeError("the stage returned no result"))
                if isinstance(item, BaseException):
                    output = item
                outcome = self._finish(processor, recording_id, item, output, report)
                heartbeat.release(recording_id)
                report.outcomes[recording_id] = outcome
                if outcome in (DONE, DUPLICATE):
                    for key, value in processor.units(item, output).items():
                        report.units[key] = report.units.get(key, 0.0) + value
        finally:
            heartbeat.stop()
        report.wall_seconds = time.perf_counter() - started
        self.totals[stage.name].add(report)
        if report.finished:
            self._dirty.add(stage.name)
        if self.on_batch:
            self.on_batch(report)
        return report

    def _load_and_process(
        self, processor: StageProcessor, ids: list[int]
    ) -> tuple[dict[int, Any], dict[int, Any]]:
        try:
            with self.factory() as session, session.begin():
                inputs = processor.load(session, ids)
        except Exception as exc:
            log.exception("%s: loading the batch failed", processor.stage.name)
            return {}, {recording_id: exc for recording_id in ids}
        ready = {rid: item for rid, item in inputs.items() if not isinstance(item, BaseException)}
        if self.config.crash_on_recording in ready:
            _die(f"{processor.stage.name}: recording {self.config.crash_on_recording}: test crash")
        try:
            outputs = processor.process(ready) if ready else {}
        except Exception as exc:
            log.exception("%s: processing the batch failed", processor.stage.name)
            outputs = {recording_id: exc for recording_id in ready}
        return inputs, outputs

    def _finish(
        self, processor: StageProcessor, recording_id: int, item: Any, output: Any, report: BatchReport
    ) -> str:
        stage = processor.stage
        if isinstance(output, BaseException):
            return self._fail(stage, recording_id, output, report)
        try:
            with self.factory() as session, session.begin():
                processor.store(session, recording_id, item, output)
                session.flush()
                if not queue.complete(session, stage, self.config.worker_id, recording_id):
                    raise _LeaseLost
        except _LeaseLost:
            log.warning("%s: recording %d: lease lost, result discarded", stage.name, recording_id)
            return LOST
        except IntegrityError as exc:
            return self._after_conflict(processor, recording_id, item, exc, report)
        except Exception as exc:
            log.exception("%s: recording %d: storing the result failed", stage.name, recording_id)
            return self._fail(stage, recording_id, exc, report)
        log.info("%s: recording %d done", stage.name, recording_id)
        return DONE

    def _after_conflict(
        self,
        processor: StageProcessor,
        recording_id: int,
        item: Any,
        error: IntegrityError,
        report: BatchReport,
    ) -> str:
        """A unique key said no: if our result is already there, the job is done; else it is an error."""
        stage = processor.stage
        with self.factory() as session, session.begin():
            if processor.already_stored(session, recording_id, item):
                if queue.complete(session, stage, self.config.worker_id, recording_id):
                    log.info("%s: recording %d done (result already stored)", stage.name, recording_id)
                    return DUPLICATE
                log.warning("%s: recording %d finished by another worker", stage.name, recording_id)
                return LOST
        return self._fail(stage, recording_id, error, report)

    def _fail(self, stage: queue.Stage, recording_id: int, error: BaseException, report: BatchReport) -> str:
        message = describe_error(error)
        with self.factory() as session, session.begin():
            status = queue.fail(
                session,
                stage,
                self.config.worker_id,
                recording_id,
                message,
                self.config.max_attempts,
                self.config.backoff_seconds,
                permanent=is_permanent(error),
            )
        if status is None:
            log.warning(
                "%s: recording %d: lease lost before the failure was recorded", stage.name, recording_id
            )
            return LOST
        report.errors[recording_id] = message
        final = status == RecordingStatus.failed
        log.warning(
            "%s: recording %d %s: %s", stage.name, recording_id, "failed" if final else "will retry", message
        )
        return FAILED if final else RETRY

    # -- drain ------------------------------------------------------------------------------------

    def pending(self) -> dict[str, int]:
        """Rows each stage still has to do: ready (now or after a backoff) or leased by any worker."""
        with self.factory() as session, session.begin():
            return {
                p.stage.name: queue.outstanding(session, p.stage, self.config.project_id, p.claim_languages)
                for p in self.processors
            }

    def _left_behind(self) -> dict[str, int]:
        """Rows of languages a stage's model must not take (see transcribe/language_policy.py)."""
        left: dict[str, int] = {}
        for processor in self.processors:
            if processor.claim_languages is None:
                continue
            model = _model_of(processor)
            with self.factory() as session, session.begin():
                backlog = queue.backlog_by_language(session, processor.stage, self.config.project_id)
            mine = {language: n for language, n in backlog.items() if not may_transcribe(model, language)}
            if mine:
                self.left_behind_messages.append(left_behind_message(model, mine))
                log.error("%s", self.left_behind_messages[-1])
            for language, count in mine.items():
                left[language] = left.get(language, 0) + count
        return left


def _model_of(processor: StageProcessor) -> str:
    return str(getattr(getattr(processor, "engine", None), "model_name", "?"))


def is_permanent(error: BaseException) -> bool:
    """PermanentError, or any error that says so (the cleaners' `permanent = True`)."""
    return isinstance(error, PermanentError) or getattr(error, "permanent", False) is True


def _die(reason: str) -> None:
    """Exit at once, flushing nothing and releasing nothing, as a killed machine would."""
    log.critical("%s: exiting without cleanup", reason)
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    os._exit(1)


def _id_list(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


__all__ = [
    "DONE",
    "DUPLICATE",
    "FAILED",
    "LOST",
    "RETRY",
    "BatchReport",
    "PermanentError",
    "StageTotals",
    "Worker",
    "WorkerConfig",
    "default_worker_id",
    "is_permanent",
]
