"""Label Studio sync: push captions as pre-filled tasks, pull reviewers' decisions back as Review rows.

A task is one image with every live recording of it: one audio (the recordings' 16 kHz WAVs one after
another) and their transcripts as Paragraphs synced to it, one paragraph per segment, named by the
recording. The caption arrives as a prediction in a TextArea; the reviewer edits or accepts it, picks
approve / reject / send back in the `decision` Choices and submits. Every prediction carries one
`model_version` (MODEL_VERSION), which push sets on the project: Label Studio pre-fills a task only with
predictions of the project's model_version. Pushing again adds tasks for new images and replaces the
prediction of a task whose caption changed. Pulling applies each submitted annotation once (the Review's
external_id names its version); a skipped task is reported, never applied.

Media: tasks link to this app with signed, expiring links (annotate/services/media_links.py), which
Label Studio's editor fetches without a voicecap session, cross-origin (the media route answers with
CORS for VOICECAP_LABELSTUDIO_URL's origin). Never data: URLs: Label Studio appends `?lsref=1` to the
audio URL, which breaks a data: URL, and would keep every file's base64 in its database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput, NotFound, VoicecapError
from annotate.services import review as review_service
from annotate.services.export import ExportFilter, ImageRecord, iter_records
from annotate.services.export.fields import _segments as segment_spans
from annotate.services.labelstudio_points import (
    fingerprint,
    keypoint_config,
    keypoint_results,
    points_on,
    project_labels,
    pull_points,
)
from annotate.services.media_links import MediaLinks
from db.files import atomic_write
from db.models import Caption, CaptionStatus, Image, Project, Review, ReviewDecision, User

LABEL_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Header value="Recordings (the transcript follows the audio)"/>
  <Audio name="audio" value="$audio" sync="transcript"/>
  <Paragraphs name="transcript" value="$transcript" layout="dialogue" nameKey="author" textKey="text"
              sync="audio"/>
  <Header value="Caption: edit it if needed, choose a decision, then submit"/>
  <TextArea name="caption" toName="image" editable="true" rows="8" maxSubmissions="1"/>
  <Choices name="decision" toName="image" choice="single-radio" showInline="true">
    <Choice value="approve"/>
    <Choice value="reject"/>
    <Choice value="send back: re-clean"/>
    <Choice value="send back: re-transcribe"/>
  </Choices>
</View>"""
MODEL_VERSION = "voicecap"  # one for every prediction, set on the project (see the module docstring)
DECISIONS = {
    "approve": ReviewDecision.approve,  # an edit where the text changed
    "reject": ReviewDecision.reject,
    "send back: re-clean": ReviewDecision.reclean,
    "send back: re-transcribe": ReviewDecision.retranscribe,
}
IMPORT_BATCH = 500  # tasks per import request (Label Studio caps one request near 250k tasks / 200 MB)
NEEDS_BASE_URL = (
    "Label Studio loads images and audio from voicecap: set VOICECAP_PUBLIC_BASE_URL to where its browser "
    "reaches voicecap (e.g. http://127.0.0.1:8000); links are signed and need no voicecap login."
)


def label_config(engine: Engine, project: Project) -> str:
    """LABEL_CONFIG, with KeyPointLabels on the image for a narrate or point project's points."""
    if not points_on(project):
        return LABEL_CONFIG
    image_line = '  <Image name="image" value="$image"/>\n'
    return LABEL_CONFIG.replace(image_line, image_line + keypoint_config(project_labels(engine, project)))


def project_title(project: Project) -> str:
    return f"voicecap: {project.name}"


def check_links(links: MediaLinks | None, media: str = "url") -> MediaLinks:
    """The links tasks will use, or a clear error before anything is sent to Label Studio."""
    if media != "url":
        raise InvalidInput(
            f"Unknown media mode {media!r}: only url. data: URLs break audio in Label Studio's editor (it "
            "appends ?lsref=1) and store every file's base64 in its database; links are signed instead."
        )
    if links is None or not links.base_url:
        raise InvalidInput(NEEDS_BASE_URL)
    return links


def paragraphs(record: ImageRecord) -> list[dict[str, Any]]:
    """The transcripts as Label Studio Paragraphs on the joined audio's timeline (one per segment)."""
    out: list[dict[str, Any]] = []
    offset = 0.0
    for number, recording in enumerate(record.recordings, start=1):
        author = f"Recording {number}"
        segments = segment_spans(recording.segments)
        if not segments:
            segments = [{"start": 0.0, "end": float(recording.seconds or 0.0), "text": recording.transcript}]
        for segment in segments:
            start, end = offset + segment["start"], offset + segment["end"]
            out.append({"author": author, "text": segment["text"].strip(), "start": start, "end": end})
        offset += float(recording.seconds or 0.0)
    return out


def prediction(text: str, score: float | None, points: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model_version": MODEL_VERSION,
        "score": 1.0 if score is None else float(score),
        "result": [
            {"from_name": "caption", "to_name": "image", "type": "textarea", "value": {"text": [text]}},
            *(points or []),
        ],
    }


def task_for(record: ImageRecord, project: Project, links: MediaLinks) -> dict[str, Any]:
    """One Label Studio task (import format) for an image with a chosen caption."""
    caption = record.chosen
    assert caption is not None
    recordings = tuple(r.id for r in record.recordings)
    return {
        "data": {
            "image": links.image(record.id),
            "audio": links.audio(recordings) if recordings else "",
            "transcript": paragraphs(record),
            "voicecap_image_id": record.id,
            "voicecap_caption_id": caption.id,
            "voicecap_project": project.name,
            "voicecap_recordings": list(recordings),
            "voicecap_points": fingerprint(record),
            "sha256": record.sha256,
        },
        "predictions": [prediction(caption.text, caption.faithfulness, keypoint_results(record))],
    }


def iter_tasks(
    engine: Engine, project: Project, flt: ExportFilter, links: MediaLinks
) -> Iterator[dict[str, Any]]:
    for records in iter_records(engine, flt):
        for record in records:
            if record.chosen is not None:
                yield task_for(record, project, links)


def write_tasks_file(
    engine: Engine, project: Project, flt: ExportFilter, links: MediaLinks, path: Path
) -> int:
    """Label Studio's JSON import format (a list of tasks with predictions), streamed to a temp name."""
    count = 0
    with atomic_write(Path(path)) as out:
        out.write("[")
        for task in iter_tasks(engine, project, flt, links):
            out.write(",\n" if count else "\n")
            out.write(json.dumps(task, ensure_ascii=False))
            count += 1
        out.write("\n]\n")
    return count


def connect(url: str, api_key: str) -> Any:
    """A label-studio-sdk 2.x client."""
    if not api_key:
        raise InvalidInput(
            "No Label Studio token: set VOICECAP_LABELSTUDIO_API_KEY (Label Studio: Account & Settings)."
        )
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url.rstrip("/"), api_key=api_key)


def find_project(client: Any, title: str) -> int | None:
    for item in client.projects.list(title=title):
        if item.title == title:
            return int(item.id)
    return None


@dataclass
class PushResult:
    ls_project_id: int
    created_project: bool
    tasks_created: int = 0
    predictions_added: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class KnownTask:
    id: int
    caption_id: int | None
    predictions: tuple[tuple[int, str], ...]  # (prediction id, its caption text) of MODEL_VERSION
    points: str | None = None  # the fingerprint of the points it was pushed with


def _existing_tasks(client: Any, ls_project_id: int) -> dict[int, KnownTask]:
    """voicecap image id -> its task in Label Studio."""
    known: dict[int, KnownTask] = {}
    for task in client.tasks.list(project=ls_project_id, fields="all", page_size=500):
        data = task.data or {}
        if data.get("voicecap_image_id") is None:
            continue
        ours = tuple(
            (int(p.id), _prediction_text(p.result))
            for p in (task.predictions or [])
            if getattr(p, "model_version", None) == MODEL_VERSION
        )
        caption_id = data.get("voicecap_caption_id")
        caption = int(caption_id) if caption_id is not None else None
        points = data.get("voicecap_points")
        known[int(data["voicecap_image_id"])] = KnownTask(int(task.id), caption, ours, points)
    return known


def _prediction_text(result: Any) -> str:
    return _annotation_text({"result": result or []}) or ""


def _create_project(client: Any, project: Project, config: str) -> int:
    made = client.projects.create(
        title=project_title(project),
        label_config=config,
        model_version=MODEL_VERSION,
        show_collab_predictions=True,
        description=f"Captions of voicecap project {project.name!r}: edit, decide and submit.",
    )
    return int(made.id)


def _replace_prediction(client: Any, known: KnownTask, task: dict[str, Any]) -> None:
    """The task's caption changed: its old prediction goes, the new one and its caption id come."""
    for prediction_id, _text in known.predictions:
        client.predictions.delete(id=prediction_id)
    wanted = task["predictions"][0]
    client.predictions.create(task=known.id, **wanted)
    client.tasks.update(id=str(known.id), data=task["data"])


def push(
    engine: Engine,
    project: Project,
    flt: ExportFilter,
    links: MediaLinks | None,
    client: Any,
    ls_project_id: int | None = None,
) -> PushResult:
    """Create or update the Label Studio project of `project`: new tasks, new predictions for changed
    captions. Settings are checked and the first tasks built before a project is created, and a project
    this call created is deleted again if the push fails, so a failed push leaves nothing behind."""
    links = check_links(links)
    tasks = iter_tasks(engine, project, flt, links)
    first = next(tasks, None)  # a task that cannot be built fails here, before any project exists
    created = False
    if ls_project_id is None:
        ls_project_id = find_project(client, project_title(project))
    config = label_config(engine, project)
    if ls_project_id is None:
        ls_project_id, created = _create_project(client, project, config), True
    elif points_on(project):  # labels added since the last push
        client.projects.update(id=ls_project_id, model_version=MODEL_VERSION, label_config=config)
    else:
        client.projects.update(id=ls_project_id, model_version=MODEL_VERSION)
    result = PushResult(ls_project_id=ls_project_id, created_project=created)
    try:
        _send(client, result, [] if first is None else [first], tasks, {} if created else None)
    except BaseException:
        if created and result.tasks_created == 0:
            client.projects.delete(id=ls_project_id)
        raise
    return result


def _send(
    client: Any,
    result: PushResult,
    first: list[dict[str, Any]],
    tasks: Iterator[dict[str, Any]],
    known: dict[int, KnownTask] | None,
) -> None:
    """Import new tasks in batches; replace the prediction of each known task whose caption changed."""
    if known is None:
        known = _existing_tasks(client, result.ls_project_id)
    batch: list[dict[str, Any]] = []
    for task in chain(first, tasks):
        image_id = task["data"]["voicecap_image_id"]
        old = known.get(image_id)
        if old is None:
            batch.append(task)
            if len(batch) >= IMPORT_BATCH:
                _import(client, result, batch)
            continue
        text = task["predictions"][0]["result"][0]["value"]["text"][0]
        data = task["data"]
        same_caption = old.caption_id == data["voicecap_caption_id"]
        same_points = old.points == data["voicecap_points"]
        if same_caption and same_points and [t for _i, t in old.predictions] == [text]:
            result.unchanged += 1
        else:
            _replace_prediction(client, old, task)
            result.predictions_added += 1
    _import(client, result, batch)


def _import(client: Any, result: PushResult, batch: list[dict[str, Any]]) -> None:
    if batch:
        client.projects.import_tasks(id=result.ls_project_id, request=batch, return_task_ids=True)
        result.tasks_created += len(batch)
        batch.clear()


def _annotation_text(annotation: dict[str, Any]) -> str | None:
    for item in annotation.get("result") or []:
        if item.get("from_name") == "caption" and item.get("type") == "textarea":
            return "\n".join(str(t) for t in (item.get("value") or {}).get("text") or []).strip()
    return None


def _annotation_choice(annotation: dict[str, Any]) -> str | None:
    for item in annotation.get("result") or []:
        if item.get("from_name") == "decision" and item.get("type") == "choices":
            chosen = (item.get("value") or {}).get("choices") or []
            return str(chosen[0]) if chosen else None
    return None


def _caption_id(task: dict[str, Any]) -> int | None:
    value = (task.get("data") or {}).get("voicecap_caption_id")
    return int(value) if value is not None else None


def _current(session: Session, caption: Caption) -> Caption:
    """Follow a caption superseded by an edit to the edit (a second pull of a changed annotation)."""
    seen = {caption.id}
    while caption.status == CaptionStatus.superseded:
        child = session.scalar(
            select(Caption).where(Caption.parent_id == caption.id).order_by(Caption.id.desc()).limit(1)
        )
        if child is None or child.id in seen:
            break
        seen.add(child.id)
        caption = child
    return caption


def download_tasks(client: Any, ls_project_id: int) -> list[dict[str, Any]]:
    """Every task of the Label Studio project with its annotations (Label Studio's JSON export)."""
    data = b"".join(
        client.projects.exports.download_sync(ls_project_id, export_type="JSON", download_all_tasks=True)
    )
    return json.loads(data)


@dataclass
class PullResult:
    ls_project_id: int
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    sent_back: int = 0
    already: int = 0
    point_sets: int = 0  # new point set versions from moved, added or deleted keypoints
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pull(
    session: Session,
    project: Project,
    client: Any,
    reviewer: User,
    ls_project_id: int | None = None,
) -> PullResult:
    """Store each submitted annotation as a Review by `reviewer`; the caller commits. A task a reviewer
    skipped in Label Studio is reported in `skipped` and changes nothing."""
    if ls_project_id is None:
        ls_project_id = find_project(client, project_title(project))
        if ls_project_id is None:
            raise NotFound(f"No Label Studio project titled {project_title(project)!r}; push first.")
    result = PullResult(ls_project_id=ls_project_id)
    for task in download_tasks(client, ls_project_id):
        annotations = sorted(task.get("annotations") or [], key=lambda a: a.get("id", 0))
        for annotation in annotations:
            label = f"task {task.get('id')} annotation {annotation.get('id')}"
            if annotation.get("was_cancelled"):
                result.skipped.append(f"{label}: skipped in Label Studio, no decision")
                continue
            external_id = f"ls:{ls_project_id}:{annotation['id']}:{annotation.get('updated_at', '')}"[:100]
            if session.scalar(select(Review.id).where(Review.external_id == external_id)) is not None:
                result.already += 1
                continue
            # Points as each new annotation (or new version of one) has them; unchanged ones add nothing.
            result.point_sets += pull_points(session, project, task, annotation, reviewer, result.skipped)
            _apply(session, project, task, annotation, reviewer, external_id, result)
    return result


def _decision(annotation: dict[str, Any], text: str | None, current: Caption) -> ReviewDecision | str:
    """The review decision an annotation means, or why it means none."""
    choice = _annotation_choice(annotation)
    decision = DECISIONS.get(choice or "approve")
    if decision is None:
        return f"unknown decision {choice!r}"
    if decision is ReviewDecision.approve:
        if not text:
            return "empty caption"
        return ReviewDecision.approve if text == current.text.strip() else ReviewDecision.edit
    return decision


def _apply(
    session: Session,
    project: Project,
    task: dict[str, Any],
    annotation: dict[str, Any],
    reviewer: User,
    external_id: str,
    result: PullResult,
) -> None:
    label = f"task {task.get('id')} annotation {annotation.get('id')}"
    caption_id = _caption_id(task)
    caption = session.get(Caption, caption_id) if caption_id is not None else None
    image = session.get(Image, caption.image_id) if caption is not None else None
    if caption is None or image is None or image.project_id != project.id:
        result.skipped.append(f"{label}: names no caption of project {project.name!r}")
        return
    current = _current(session, caption)
    text = _annotation_text(annotation)
    decision = _decision(annotation, text, current)
    if not isinstance(decision, ReviewDecision):  # why the annotation means no decision
        result.skipped.append(f"{label}: {decision}")
        return
    reason = f"Label Studio {label} by Label Studio user {annotation.get('completed_by')}"
    try:
        with session.begin_nested():
            review_service.decide(
                session,
                current.id,
                reviewer,
                decision,
                text=text if decision is ReviewDecision.edit else None,
                reason=reason,
                source="labelstudio",
                external_id=external_id,
            )
    except VoicecapError as exc:
        result.skipped.append(f"{label}: {exc.message}")
        return
    counter = {
        ReviewDecision.approve: "approved",
        ReviewDecision.edit: "edited",
        ReviewDecision.reject: "rejected",
    }.get(decision, "sent_back")
    setattr(result, counter, getattr(result, counter) + 1)
