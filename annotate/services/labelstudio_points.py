"""Points in Label Studio: a narrate or point project's points travel as KeyPointLabels on the image.

Push: the labelling config gains `<KeyPointLabels name="points" toName="image">` with one Label per
label to point at (the project's, every image's own, and those already pointed at; narrate mode's
unlabelled clicks are the label `point`), and each task's prediction one `keypointlabels` result per
point of every take's current point set, x and y in percent of the image. A result's id names its take
and index (`vc<recording id>p<index>`), which Label Studio keeps on the annotation's regions.

Pull: a new annotation's keypoints, grouped by take (a point added in the editor belongs to the task's
first take with points, else its first take), become a new PointSet version through the review page's
`point_sets.correct_points` (its checks, and the take realigned), created_by the pulling lead with the
note "label studio", when they differ from the current set; the same points create no
version, so pulling twice changes nothing. A moved point keeps its time on the audio; an added one has
none. A label answered "none in this image" stops being absent once it has a point.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from xml.sax.saxutils import quoteattr

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotate.errors import VoicecapError
from annotate.services.export import ImageRecord
from annotate.services.point_sets import Correction, correct_points
from db.models import Image, PointSet, Project, ProjectMode, Recording, User
from db.settings import get_settings

FROM_NAME = "points"
UNLABELLED = "point"  # narrate mode's clicks have no label; Label Studio needs one to draw a keypoint
NOTE = "label studio"
KEYPOINT_WIDTH = 0.75  # the drawn keypoint's size, in percent of the image width
_REGION_ID = re.compile(r"^vc(\d+)p(\d+)$")
# Two coordinates closer than this (in 0..1 of the image) are one position: percent round trips.
SAME_PLACE = 1e-6


def points_on(project: Project) -> bool:
    return project.mode in (ProjectMode.point, ProjectMode.narrate)


def project_labels(engine: Engine, project: Project) -> list[str]:
    """Every label a keypoint of this project may carry, in a stable order."""
    labels: dict[str, None] = dict.fromkeys(str(label) for label in project.labels or [])
    own = select(Image.labels).where(Image.project_id == project.id, Image.labels.is_not(None))
    pointed = (
        select(PointSet.points)
        .join(Recording, Recording.id == PointSet.recording_id)
        .where(Recording.project_id == project.id)
    )
    with engine.connect() as conn:
        for (image_labels,) in conn.execute(own).all():
            labels.update(dict.fromkeys(str(label) for label in image_labels or []))
        for (points,) in conn.execute(pointed).all():
            labels.update(dict.fromkeys(str(p["label"]) for p in points or [] if p.get("label") is not None))
    if project.mode == ProjectMode.narrate or not labels:
        labels[UNLABELLED] = None
    return list(labels)


def keypoint_config(labels: list[str]) -> str:
    """The KeyPointLabels tag of the labelling config."""
    inner = "".join(f"\n    <Label value={quoteattr(label)}/>" for label in labels)
    return f'  <KeyPointLabels name="{FROM_NAME}" toName="image" smart="false">{inner}\n  </KeyPointLabels>\n'


def keypoint_results(record: ImageRecord) -> list[dict[str, Any]]:
    """The image's points (every take's current set) as keypointlabels prediction results."""
    results = []
    for recording in record.recordings:
        current = record.pointing.point_sets.get(recording.id)
        for index, point in enumerate(current[0] if current else []):
            label = point.get("label")
            results.append(
                {
                    "id": f"vc{recording.id}p{index}",
                    "from_name": FROM_NAME,
                    "to_name": "image",
                    "type": "keypointlabels",
                    "original_width": record.width,
                    "original_height": record.height,
                    "image_rotation": 0,
                    "value": {
                        "x": float(point["x"]) * 100.0,
                        "y": float(point["y"]) * 100.0,
                        "width": KEYPOINT_WIDTH,
                        "keypointlabels": [UNLABELLED if label is None else str(label)],
                    },
                }
            )
    return results


def fingerprint(record: ImageRecord) -> str | None:
    """Names the points a task was pushed with, so a push again replaces a task whose points changed;
    None for an image without points (as tasks pushed before points were)."""
    current = record.pointing.point_sets
    sets = {str(r.id): current[r.id] for r in record.recordings if r.id in current}
    if not sets:
        return None
    return hashlib.sha256(json.dumps(sets, sort_keys=True).encode()).hexdigest()[:16]


def _annotation_points(annotation: dict[str, Any]) -> list[tuple[int | None, int | None, dict[str, Any]]]:
    """(recording id, index in its pushed set, value) of each keypoint: ids None for a point added in LS."""
    found = []
    for item in annotation.get("result") or []:
        if item.get("from_name") != FROM_NAME or item.get("type") != "keypointlabels":
            continue
        match = _REGION_ID.match(str(item.get("id", "")))
        recording_id, index = (int(match[1]), int(match[2])) if match else (None, None)
        found.append((recording_id, index, item.get("value") or {}))
    return found


def _current(session: Session, recording_id: int) -> PointSet | None:
    query = select(PointSet).where(PointSet.recording_id == recording_id).order_by(PointSet.version.desc())
    return session.scalars(query.limit(1)).first()


def _placed(points: list[Any]) -> list[tuple[str, float, float]]:
    return sorted((str(p.get("label")), float(p["x"]), float(p["y"])) for p in points)


def _same(old: list[Any], new: list[dict[str, Any]]) -> bool:
    """The same points, in any order (Label Studio may list regions in another order than pushed)."""
    a, b = _placed(old), _placed(new)
    return len(a) == len(b) and all(
        la == lb and abs(xa - xb) < SAME_PLACE and abs(ya - yb) < SAME_PLACE
        for (la, xa, ya), (lb, xb, yb) in zip(a, b, strict=True)
    )


def pull_points(
    session: Session,
    project: Project,
    task: dict[str, Any],
    annotation: dict[str, Any],
    reviewer: User,
    skipped: list[str],
) -> int:
    """Store the annotation's keypoints as new point set versions where they changed (through the review
    service's correct_points); how many versions. A correction it refuses is added to `skipped`."""
    if not points_on(project):
        return 0
    data = task.get("data") or {}
    takes = [int(r) for r in data.get("voicecap_recordings") or []]
    recordings = {
        r.id: r
        for r in session.scalars(select(Recording).where(Recording.id.in_(takes or [-1]))).all()
        if r.project_id == project.id
    }
    if not recordings:
        return 0
    current = {rid: _current(session, rid) for rid in recordings}
    with_points = [rid for rid in takes if rid in recordings and current[rid] is not None]
    home = with_points[0] if with_points else next(rid for rid in takes if rid in recordings)
    wanted: dict[int, list[dict[str, Any]]] = {rid: [] for rid in with_points}
    for recording_id, index, value in _annotation_points(annotation):
        rid = recording_id if recording_id in recordings else home
        old = current[rid]
        old_points = old.points if old is not None else []
        pushed = index is not None and rid == recording_id and index < len(old_points)
        t = old_points[index].get("t") if pushed else None  # a moved point keeps its time
        labels = value.get("keypointlabels") or [UNLABELLED]
        label = None if project.mode == ProjectMode.narrate or labels[0] == UNLABELLED else str(labels[0])
        point = {"x": float(value["x"]) / 100.0, "y": float(value["y"]) / 100.0, "t": t, "label": label}
        wanted.setdefault(rid, []).append(point)
    versions = 0
    for rid, points in wanted.items():
        old = current[rid]
        if old is not None and _same(old.points, points):
            continue
        pointed = {p["label"] for p in points}
        absent = [label for label in (old.absent_labels if old is not None else []) if label not in pointed]
        # The review page's own correction: the same checks, a stale base refused, the take realigned.
        base = old.version if old is not None else 0
        try:
            with session.begin_nested():
                correct_points(session, get_settings(), reviewer, rid, Correction(base, points, absent, NOTE))
        except VoicecapError as exc:
            skipped.append(f"points of recording {rid}: {exc.message}")
            continue
        versions += 1
    return versions
