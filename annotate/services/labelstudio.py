"""Label Studio sync: push captions as pre-filled tasks, pull reviewers' edits back as Review rows.

A task is one image with its audio and transcript; its caption arrives as a prediction in a TextArea, so
a reviewer in Label Studio edits or accepts it and submits. Pushing again adds tasks for new images and a
new prediction where an image's caption changed. Pulling turns each submitted annotation into an
`approve` (text unchanged) or an `edit` (text changed) through the review service, once per annotation
version (the Review's external_id names it).

Label Studio's browser must reach the media: `url` links point at this app (VOICECAP_PUBLIC_BASE_URL;
the reviewer must be logged in to voicecap in the same browser) or at the image's own http(s) source;
`data` embeds the bytes as data: URLs, for small projects and for tests.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput, NotFound, VoicecapError
from annotate.services import review as review_service
from annotate.services.export import ExportFilter, ImageRecord, iter_records
from db.blobstore import Blobs
from db.files import atomic_write
from db.models import Caption, CaptionStatus, Image, Project, Review, User

MediaMode = Literal["url", "data"]
LABEL_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Audio name="audio" value="$audio"/>
  <Header value="Transcript"/>
  <Text name="transcript" value="$transcript"/>
  <Header value="Caption: edit it if needed, then submit"/>
  <TextArea name="caption" toName="image" editable="true" rows="8" maxSubmissions="1"/>
</View>"""
MODEL_VERSION = "voicecap-caption-{}"
_MODEL_VERSION = re.compile(r"^voicecap-caption-(\d+)$")
IMPORT_BATCH = 500  # tasks per import request (Label Studio caps one request near 250k tasks / 200 MB)
MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


def project_title(project: Project) -> str:
    return f"voicecap: {project.name}"


@dataclass
class MediaLinks:
    """How tasks point at images and audio."""

    blobs: Blobs
    mode: MediaMode = "url"
    public_base_url: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("url", "data"):
            raise InvalidInput(f"Unknown media mode {self.mode!r}; use url or data.")
        self.public_base_url = self.public_base_url.rstrip("/")

    def _need_base(self) -> str:
        if not self.public_base_url:
            raise InvalidInput(
                "Label Studio needs URLs it can load: set VOICECAP_PUBLIC_BASE_URL to where voicecap is "
                "served (e.g. http://127.0.0.1:8000), or embed the media with --media data."
            )
        return self.public_base_url

    def image(self, record: ImageRecord) -> str:
        if self.mode == "data":
            mime = MIME.get(record.format.lower(), "application/octet-stream")
            return _data_url(mime, self.blobs.read_bytes(record.blob_key))
        if record.source.startswith(("http://", "https://")):
            return record.source
        return f"{self._need_base()}/api/images/{record.id}/original"

    def audio(self, record: ImageRecord, recording_id: int | None) -> str:
        recordings = record.recordings
        chosen = next((r for r in recordings if r.id == recording_id), recordings[0] if recordings else None)
        if chosen is None:
            return ""
        if self.mode == "data":
            return _data_url(chosen.content_type, self.blobs.read_bytes(chosen.original_key))
        return f"{self._need_base()}/api/recordings/{chosen.id}/audio"


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def prediction(caption_id: int, text: str, score: float | None) -> dict[str, Any]:
    return {
        "model_version": MODEL_VERSION.format(caption_id),
        "score": 1.0 if score is None else float(score),
        "result": [
            {"from_name": "caption", "to_name": "image", "type": "textarea", "value": {"text": [text]}}
        ],
    }


def task_for(record: ImageRecord, project: Project, links: MediaLinks) -> dict[str, Any]:
    """One Label Studio task (import format) for an image with a chosen caption."""
    caption = record.chosen
    assert caption is not None
    return {
        "data": {
            "image": links.image(record),
            "audio": links.audio(record, caption.recording_id),
            "transcript": "\n\n".join(r.transcript for r in record.recordings),
            "voicecap_image_id": record.id,
            "voicecap_caption_id": caption.id,
            "voicecap_project": project.name,
            "sha256": record.sha256,
        },
        "predictions": [prediction(caption.id, caption.text, caption.faithfulness)],
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


def _existing_tasks(client: Any, ls_project_id: int) -> dict[int, tuple[int, set[str]]]:
    """voicecap image id -> (task id, model versions of its predictions)."""
    known: dict[int, tuple[int, set[str]]] = {}
    for task in client.tasks.list(project=ls_project_id, fields="all", page_size=500):
        image_id = (task.data or {}).get("voicecap_image_id")
        if image_id is None:
            continue
        versions = {p.model_version for p in (task.predictions or []) if getattr(p, "model_version", None)}
        known[int(image_id)] = (int(task.id), versions)
    return known


def push(
    engine: Engine,
    project: Project,
    flt: ExportFilter,
    links: MediaLinks,
    client: Any,
    ls_project_id: int | None = None,
) -> PushResult:
    """Create or update the Label Studio project of `project`: new tasks, predictions for new captions."""
    created = False
    if ls_project_id is None:
        ls_project_id = find_project(client, project_title(project))
    if ls_project_id is None:
        made = client.projects.create(
            title=project_title(project),
            label_config=LABEL_CONFIG,
            description=f"Captions of voicecap project {project.name!r}; edit and submit to review them.",
        )
        ls_project_id, created = int(made.id), True
    result = PushResult(ls_project_id=ls_project_id, created_project=created)
    known = {} if created else _existing_tasks(client, ls_project_id)

    new_tasks: list[dict[str, Any]] = []
    new_predictions: list[dict[str, Any]] = []

    def flush(final: bool = False) -> None:
        if new_tasks and (final or len(new_tasks) >= IMPORT_BATCH):
            client.projects.import_tasks(id=ls_project_id, request=new_tasks, return_task_ids=True)
            result.tasks_created += len(new_tasks)
            new_tasks.clear()
        if new_predictions and (final or len(new_predictions) >= IMPORT_BATCH):
            client.projects.import_predictions(id=ls_project_id, request=new_predictions)
            result.predictions_added += len(new_predictions)
            new_predictions.clear()

    for task in iter_tasks(engine, project, flt, links):
        image_id = task["data"]["voicecap_image_id"]
        if image_id not in known:
            new_tasks.append(task)
        else:
            task_id, versions = known[image_id]
            wanted = task["predictions"][0]
            if wanted["model_version"] in versions:
                result.unchanged += 1
            else:
                new_predictions.append({**wanted, "task": task_id})
        flush()
    flush(final=True)
    return result


@dataclass
class PullResult:
    ls_project_id: int
    approved: int = 0
    edited: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _annotation_text(annotation: dict[str, Any]) -> str | None:
    for item in annotation.get("result") or []:
        if item.get("from_name") == "caption" and item.get("type") == "textarea":
            return "\n".join(str(t) for t in (item.get("value") or {}).get("text") or []).strip()
    return None


def _caption_id(task: dict[str, Any], annotation: dict[str, Any]) -> int | None:
    shown = annotation.get("prediction") or {}
    match = _MODEL_VERSION.match(str(shown.get("model_version", "")))
    if match:
        return int(match.group(1))
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


def pull(
    session: Session,
    project: Project,
    client: Any,
    reviewer: User,
    ls_project_id: int | None = None,
) -> PullResult:
    """Store each submitted annotation as a Review (approve or edit by `reviewer`); the caller commits."""
    if ls_project_id is None:
        ls_project_id = find_project(client, project_title(project))
        if ls_project_id is None:
            raise NotFound(f"No Label Studio project titled {project_title(project)!r}; push first.")
    result = PullResult(ls_project_id=ls_project_id)
    for task in download_tasks(client, ls_project_id):
        annotations = sorted(task.get("annotations") or [], key=lambda a: a.get("id", 0))
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                continue
            external_id = f"ls:{ls_project_id}:{annotation['id']}:{annotation.get('updated_at', '')}"[:100]
            if session.scalar(select(Review.id).where(Review.external_id == external_id)) is not None:
                result.already += 1
                continue
            _apply(session, project, task, annotation, reviewer, external_id, result)
    return result


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
    text = _annotation_text(annotation)
    caption_id = _caption_id(task, annotation)
    caption = session.get(Caption, caption_id) if caption_id is not None else None
    image = session.get(Image, caption.image_id) if caption is not None else None
    if caption is None or image is None or image.project_id != project.id:
        result.skipped.append(f"{label}: names no caption of project {project.name!r}")
        return
    if not text:
        result.skipped.append(f"{label}: empty caption")
        return
    current = _current(session, caption)
    decision = "approve" if text == current.text.strip() else "edit"
    reason = f"Label Studio {label} by Label Studio user {annotation.get('completed_by')}"
    try:
        with session.begin_nested():
            review_service.decide(
                session,
                current.id,
                reviewer,
                decision,
                text=text if decision == "edit" else None,
                reason=reason,
                source="labelstudio",
                external_id=external_id,
            )
    except VoicecapError as exc:
        result.skipped.append(f"{label}: {exc.message}")
        return
    if decision == "approve":
        result.approved += 1
    else:
        result.edited += 1
