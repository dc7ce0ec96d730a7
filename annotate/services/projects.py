"""Projects: the instructions and guiding questions annotators see, the recording limits, and the mode
(describe, narrate, point) with the labels a point project asks for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.services.interface_languages import check_interface_language
from annotate.services.pointing import normalize_labels
from db.models import Image, Project, ProjectMode, Recording
from transcribe.clean.languages import LANGUAGE_NAMES, base_language, shipped_languages

# Modelled on PixMo-Cap's guiding questions.
DEFAULT_QUESTIONS: list[str] = [
    "What is the image at first glance?",
    "What objects are there, and how many of each?",
    "What does any text in the image say?",
    "Where are the objects, relative to each other and to the frame?",
    "What subtle details would someone miss at first?",
    "What is in the background?",
    "What is the style of the image, and what are its colours?",
]

DEFAULT_INSTRUCTIONS = (
    "Look at the image and describe it out loud, in as much detail as you can, as if to someone who "
    "cannot see it. Use the questions as a guide. Speak for at least the minimum time; you can listen "
    "back and re-record before you submit."
)


@dataclass
class ProjectSpec:
    name: str
    instructions: str = DEFAULT_INSTRUCTIONS
    questions: list[str] | None = None
    min_seconds: float = 30.0
    max_seconds: float = 120.0
    per_image: int = 1
    language: str = "en"
    interface_language: str = "en"  # the annotator page's strings (a catalog in web/i18n/)
    caption_language: str | None = None  # None: captions in the language spoken
    mode: ProjectMode | str = ProjectMode.describe
    labels: list[str] | None = None


def load_questions(path: Path) -> list[str]:
    """Questions from a YAML or JSON file: a list of strings, or a mapping with a `questions` list."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"Cannot read questions file {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if isinstance(data, dict):
        data = data.get("questions")
    if not isinstance(data, list) or not data or not all(isinstance(q, str) and q.strip() for q in data):
        raise InvalidInput(f"{path} must hold a non-empty list of questions (strings).")
    return [q.strip() for q in data]


def load_labels(path: Path) -> list[str]:
    """Labels from a file: a JSON or YAML list (.json, .yaml, .yml), else plain text, one per line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"Cannot read labels file {path}: {reason}") from None
    suffix = path.suffix.lower()
    if suffix in {".json", ".yaml", ".yml"}:
        try:
            data: Any = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            kind = "JSON" if suffix == ".json" else "YAML"
            raise InvalidInput(f"{path} is not valid {kind}: {exc}") from None
        if isinstance(data, dict):
            data = data.get("labels")
        if not isinstance(data, list):
            raise InvalidInput(f"{path} must hold a list of labels (strings).")
    else:
        data = text.splitlines()
    labels = normalize_labels(data, str(path))
    if not labels:
        raise InvalidInput(f"{path} holds no labels.")
    return labels


def parse_mode(mode: ProjectMode | str) -> ProjectMode:
    try:
        return ProjectMode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in ProjectMode)
        raise InvalidInput(f"Unknown mode {mode!r}; choose one of {choices}.", code="invalid_mode") from None


def check_mode_labels(mode: ProjectMode, labels: list[str]) -> None:
    """Labels belong to point projects (a point project may leave them to its images' manifests)."""
    if labels and mode is not ProjectMode.point:
        raise InvalidInput(
            f"Labels are for point projects; this one is {mode.value}. Give --mode point, or no labels.",
            code="labels_not_expected",
        )


def validate_limits(min_seconds: float, max_seconds: float, per_image: int) -> None:
    if min_seconds < 0 or max_seconds <= 0:
        raise InvalidInput("Recording limits must be positive.")
    if min_seconds >= max_seconds:
        raise InvalidInput(f"--min-seconds ({min_seconds}) must be below --max-seconds ({max_seconds}).")
    if max_seconds > 3600:
        raise InvalidInput("--max-seconds is capped at 3600.")
    if not 1 <= per_image <= 100:
        raise InvalidInput("--per-image must be between 1 and 100.")


def caption_languages() -> list[str]:
    """The languages the LLM cleaner can be asked to write captions in (by base code)."""
    return sorted(set(LANGUAGE_NAMES) | set(shipped_languages()))


def check_caption_language(code: str | None) -> str | None:
    """A caption language the LLM cleaner can be asked for by name ("es", "pt-BR"); None or "" means
    "the language spoken"."""
    if code is None or not code.strip():
        return None
    normalised = code.strip().replace("_", "-")
    known = caption_languages()
    if not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?", normalised) or (
        base_language(normalised) not in known
    ):
        raise InvalidInput(
            f"Unknown caption language {code!r}; use one of: {', '.join(known)} (optionally with a region, "
            "e.g. pt-BR).",
            code="unknown_caption_language",
        )
    base, _, region = normalised.partition("-")
    return f"{base.lower()}-{region.upper()}" if region else base.lower()


def create_project(session: Session, spec: ProjectSpec) -> Project:
    name = spec.name.strip()
    if not name:
        raise InvalidInput("A project needs a name.")
    validate_limits(spec.min_seconds, spec.max_seconds, spec.per_image)
    mode = parse_mode(spec.mode)
    labels = normalize_labels(spec.labels or [])
    check_mode_labels(mode, labels)
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"A project named {name!r} already exists.")
    project = Project(
        name=name,
        instructions=spec.instructions,
        questions=list(spec.questions or DEFAULT_QUESTIONS),
        min_seconds=spec.min_seconds,
        max_seconds=spec.max_seconds,
        per_image=spec.per_image,
        language=spec.language,
        interface_language=check_interface_language(spec.interface_language),
        caption_language=check_caption_language(spec.caption_language),
        mode=mode,
        labels=labels,
    )
    session.add(project)
    session.flush()
    return project


def update_project(session: Session, project: Project, **changes: Any) -> Project:
    allowed = {
        "instructions",
        "questions",
        "min_seconds",
        "max_seconds",
        "per_image",
        "language",
        "name",
        "mode",
        "labels",
        "interface_language",
        "caption_language",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"Unknown project fields: {', '.join(sorted(unknown))}")
    if "mode" in changes or "labels" in changes:
        changes.update(_mode_changes(session, project, changes))
    merged = {k: changes.get(k, getattr(project, k)) for k in ("min_seconds", "max_seconds", "per_image")}
    validate_limits(merged["min_seconds"], merged["max_seconds"], merged["per_image"])
    if "questions" in changes:
        questions = changes["questions"]
        if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
            raise InvalidInput("Questions must be a list of non-empty strings.")
    if "name" in changes:
        changes["name"] = _free_name(session, str(changes["name"] or ""), project.id)
    if "interface_language" in changes:
        changes["interface_language"] = check_interface_language(str(changes["interface_language"] or ""))
    if "caption_language" in changes:
        changes["caption_language"] = check_caption_language(changes["caption_language"])
    for key, value in changes.items():
        setattr(project, key, value)
    session.flush()
    return project


def _mode_changes(session: Session, project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    """A project's mode is fixed once it has takes (their pointing data was checked against it);
    its labels may change (takes keep the answers they were checked against)."""
    mode = parse_mode(changes.get("mode", project.mode))
    if mode is not project.mode:
        has_takes = session.scalar(select(Recording.id).where(Recording.project_id == project.id).limit(1))
        if has_takes is not None:
            raise Conflict(
                f"Project {project.name!r} already has recordings; its mode stays {project.mode.value}.",
                code="project_mode_locked",
            )
    labels = normalize_labels(changes.get("labels", project.labels) or [])
    check_mode_labels(mode, labels)
    if mode is ProjectMode.point and not labels:
        _check_every_image_has_labels(session, project)
    return {"mode": mode, "labels": labels}


def _check_every_image_has_labels(session: Session, project: Project) -> None:
    """A point project without labels of its own asks each image for the manifest's labels: refuse to
    leave an image with nothing to point at (ingest refuses such images for the same reason)."""
    unlabelled = session.scalar(
        select(Image.id)
        .where(
            Image.project_id == project.id,
            or_(Image.labels.is_(None), cast(Image.labels, Text).in_(["null", "[]"])),
        )
        .limit(1)
    )
    if unlabelled is not None:
        raise Conflict(
            f"Project {project.name!r} has images without labels of their own (image {unlabelled}): "
            "a point project needs labels to ask for there. Keep at least one project label.",
            code="labels_needed",
        )


def _free_name(session: Session, name: str, project_id: int) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("A project needs a name.")
    taken = session.scalar(select(Project.id).where(Project.name == name, Project.id != project_id))
    if taken is not None:
        raise Conflict(f"A project named {name!r} already exists.")
    return name


def get_project(session: Session, name_or_id: str | int) -> Project:
    query = select(Project)
    if isinstance(name_or_id, int) or (isinstance(name_or_id, str) and name_or_id.isdigit()):
        project = session.get(Project, int(name_or_id))
        if project is None:
            project = session.scalar(query.where(Project.name == str(name_or_id)))
    else:
        project = session.scalar(query.where(Project.name == name_or_id))
    if project is None:
        raise NotFound(f"No project named {name_or_id!r}. See `voicecap project list`.")
    return project


def list_projects(session: Session) -> list[tuple[Project, int]]:
    """Projects with their image counts."""
    counts = select(Image.project_id, func.count().label("n")).group_by(Image.project_id).subquery()
    rows = session.execute(
        select(Project, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.project_id == Project.id)
        .order_by(Project.name)
    )
    return [(project, int(n)) for project, n in rows]


def project_dict(project: Project, image_count: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "instructions": project.instructions,
        "questions": project.questions,
        "min_seconds": project.min_seconds,
        "max_seconds": project.max_seconds,
        "per_image": project.per_image,
        "language": project.language,
        "interface_language": project.interface_language,
        "caption_language": project.caption_language,
        "mode": project.mode.value,
        "labels": list(project.labels or []),
        "created_at": project.created_at.isoformat(),
    }
    if image_count is not None:
        data["images"] = image_count
    return data
