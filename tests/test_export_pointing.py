"""Pointing in exports, on both databases: `points` per label in PixMo-Points' shape (percent, one decimal,
count, "none" labels, only the current point set), Molmo's `points_text`, each take's `traces` and
`timed_caption`, `--format pixmo-points` loaded by `datasets` with PixMo-Points' features, and
`--format localized-narratives` with its traces read by Localized Narratives' own record types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session

from annotate.services.export import ExportFilter, ExportOptions, SplitSpec, export_dataset
from annotate.services.export.pointing import molmo_points, points_text, take_points
from db.blobstore import BlobStore
from db.models import Image, Project, ProjectMode, Recording
from tests.support import factories
from tests.support.cli import run_cli, run_json
from tests.support.localized_narratives import LocalizedNarrative, TimedPoint, TimedUtterance
from tests.test_export import add_caption, add_image, add_recording, read_lines

datasets = pytest.importorskip("datasets", reason="pip install datasets (in the test extra)")

# allenai/pixmo-points' dataset card (README.md, dataset_info.features), in its order.
PIXMO_POINTS_FEATURES = datasets.Features(
    {
        "image_url": datasets.Value("string"),
        "image_sha256": datasets.Value("string"),
        "points": datasets.List({"x": datasets.Value("float64"), "y": datasets.Value("float64")}),
        "count": datasets.Value("int64"),
        "label": datasets.Value("string"),
        "collection_method": datasets.Value("string"),
    }
)
WORDS = [
    {"start": 0.0, "end": 0.4, "word": " Three", "probability": 0.9},
    {"start": 0.4, "end": 0.9, "word": " deck", "probability": 0.9},
    {"start": 0.9, "end": 1.5, "word": " chairs.", "probability": 0.9},
]
STROKES = [[[0.1, 0.2, 0.05], [0.15, 0.25, 0.1]], [[0.8, 0.7, 1.2]]]


@dataclass
class PointingSeed:
    point: Project
    narrate: Project
    pointed: Image  # point mode: three labels, two versions of its point set
    described: Image  # point project, a take without pointing data
    narrated: Image  # narrate mode: a trace, words and one unlabelled click
    pointed_take: Recording
    narrated_take: Recording


def _project(session: Session, name: str, mode: ProjectMode, labels: list[str]) -> Project:
    project = factories.add_project(session, name, min_seconds=5.0, max_seconds=120.0)
    project.mode, project.labels = mode, labels
    return project


def seed_pointing(session: Session, blobs: BlobStore) -> PointingSeed:
    """Committed: a point project (labels deck chair, boat, person) and a narrate project."""
    point = _project(session, "Deck", ProjectMode.point, ["deck chair", "boat", "person"])
    narrate = _project(session, "Walk", ProjectMode.narrate, [])
    lead = factories.add_user(session, "lena", "lead")
    annotator = factories.add_user(session, "annika", "annotator")
    P = factories.point_values

    pointed = add_image(session, blobs, point, 1)
    take, transcript = add_recording(session, blobs, pointed, annotator, "three deck chairs and a boat")
    add_caption(session, pointed, "Three deck chairs and a boat.", status="approved", transcript=transcript)
    # The annotator's version, then a reviewer's correction: only the correction is exported.
    factories.add_point_set(session, take, [P(0.9, 0.9, 1.0, "deck chair")], absent_labels=["boat"])
    factories.add_point_set(
        session,
        take,
        [
            P(0.5, 0.25, 0.6, "deck chair"),
            P(0.1234, 0.4567, 0.8, "deck chair"),
            P(0.0449, 0.9951, None, "deck chair"),
            P(0.33333, 0.66666, 1.4, "boat"),
        ],
        version=2,
        created_by=lead,
        note="moved",
        absent_labels=["person"],
    )

    described = add_image(session, blobs, point, 2)
    _take, transcript = add_recording(session, blobs, described, annotator, "a quiet harbour")
    add_caption(session, described, "A quiet harbour.", status="approved", transcript=transcript)

    narrated = add_image(session, blobs, narrate, 3)
    walked, transcript = add_recording(session, blobs, narrated, annotator, "Three deck chairs.")
    transcript.words = WORDS
    add_caption(session, narrated, "Three deck chairs.", status="approved", transcript=transcript)
    factories.add_trace(session, walked, STROKES)
    factories.add_point_set(session, walked, [P(0.875, 0.125, 1.1)])
    session.commit()
    return PointingSeed(point, narrate, pointed, described, narrated, take, walked)


@pytest.fixture
def seeded(session, blobs) -> PointingSeed:
    return seed_pointing(session, blobs)


def _export(engine, blobs, project: Project, out: Path, **options) -> dict[str, dict]:
    """The rows by image id, from JSONL and Parquet (which must agree)."""
    flt = ExportFilter(project_id=project.id)
    export_dataset(
        engine,
        blobs,
        project,
        ExportOptions(filter=flt, split=SplitSpec(100, 0, 0), formats=("jsonl", "parquet"), **options),
        out,
    )
    rows = {row["image_id"]: row for row in read_lines(out / "train.jsonl")}
    from_parquet = {row["image_id"]: row for row in pq.read_table(out / "train.parquet").to_pylist()}
    for image_id, row in rows.items():
        for key in ("points", "points_text"):
            assert from_parquet[image_id][key] == row[key], key
        for mine, theirs in zip(row["recordings"], from_parquet[image_id]["recordings"], strict=True):
            assert (mine["traces"], mine["timed_caption"]) == (theirs["traces"], theirs["timed_caption"])
    return rows


def test_points_are_exported_per_label_in_percent_from_the_current_set(
    engine, blobs, seeded, tmp_path
) -> None:
    rows = _export(engine, blobs, seeded.point, tmp_path / "deck")
    row = rows[seeded.pointed.id]
    take = seeded.pointed_take.id
    assert row["points"] == [
        {
            "label": "deck chair",
            "points": [{"x": 50.0, "y": 25.0}, {"x": 12.3, "y": 45.7}, {"x": 4.5, "y": 99.5}],
            "count": 3,
            "collection_method": "pointing",
            "recording_id": take,
        },
        {
            "label": "boat",
            "points": [{"x": 33.3, "y": 66.7}],
            "count": 1,
            "collection_method": "pointing",
            "recording_id": take,
        },
        # Answered "none in this image": count 0, no points.
        {"label": "person", "points": [], "count": 0, "collection_method": "pointing", "recording_id": take},
    ]
    # Molmo's text: sorted by x, one decimal; a single point is <point>, several <points>.
    assert row["points_text"] == (
        '<points x1="4.5" y1="99.5" x2="12.3" y2="45.7" x3="50.0" y3="25.0" alt="deck chair">'
        "deck chair</points>\n"
        '<point x="33.3" y="66.7" alt="boat">boat</point>'
    )
    # The point mode take has no trace: its traces are empty and its words are not read.
    assert [(r["traces"], r["timed_caption"]) for r in row["recordings"]] == [([], None)]
    # A take without pointing data.
    plain = rows[seeded.described.id]
    assert plain["points"] == [] and plain["points_text"] is None
    assert [(r["traces"], r["timed_caption"]) for r in plain["recordings"]] == [([], None)]


def test_narrated_takes_carry_traces_timed_caption_and_unlabelled_points(
    engine, blobs, seeded, tmp_path
) -> None:
    row = _export(engine, blobs, seeded.narrate, tmp_path / "walk")[seeded.narrated.id]
    assert row["points"] == [
        {
            "label": None,
            "points": [{"x": 87.5, "y": 12.5}],
            "count": 1,
            "collection_method": "narrate",
            "recording_id": seeded.narrated_take.id,
        }
    ]
    assert row["points_text"] is None  # a click while narrating names nothing to point at
    (recording,) = row["recordings"]
    assert recording["traces"] == [
        [{"x": 0.1, "y": 0.2, "t": 0.05}, {"x": 0.15, "y": 0.25, "t": 0.1}],
        [{"x": 0.8, "y": 0.7, "t": 1.2}],
    ]
    assert recording["timed_caption"] == [
        {"utterance": "Three", "start_time": 0.0, "end_time": 0.4},
        {"utterance": "deck", "start_time": 0.4, "end_time": 0.9},
        {"utterance": "chairs.", "start_time": 0.9, "end_time": 1.5},
    ]


def test_molmo_point_text_for_one_and_several_points() -> None:
    assert molmo_points([{"x": 12.3, "y": 45.6}], "deck chair") == (
        '<point x="12.3" y="45.6" alt="deck chair">deck chair</point>'
    )
    several = [{"x": 70.0, "y": 5.0}, {"x": 12.3, "y": 45.6}, {"x": 12.3, "y": 40.0}]
    assert molmo_points(several, "deck chair") == (
        '<points x1="12.3" y1="40.0" x2="12.3" y2="45.6" x3="70.0" y3="5.0" alt="deck chair">'
        "deck chair</points>"
    )
    # A quote in a label cannot end the attribute.
    assert molmo_points([{"x": 1.0, "y": 2.0}], 'the "big" one') == (
        '<point x="1.0" y="2.0" alt="the &quot;big&quot; one">the "big" one</point>'
    )
    none = [{"label": "person", "points": [], "count": 0}]
    assert points_text(none) is None


def _reference_groups_and_text(
    points: list[dict], absent: list[str], recording_id: int
) -> tuple[list, str | None]:
    """The export's groups and Molmo text as first written (two passes, every number formatted by "%0.1f"):
    the one-pass take_points must give the same values, so the same bytes."""
    by_label: dict = {}
    for p in points:
        by_label.setdefault(p.get("label"), []).append(
            {"x": round(p["x"] * 100.0, 1), "y": round(p["y"] * 100.0, 1)}
        )
    groups = [
        {
            "label": label,
            "points": placed,
            "count": len(placed),
            "collection_method": "narrate" if label is None else "pointing",
            "recording_id": recording_id,
        }
        for label, placed in by_label.items()
    ]
    groups += [
        {
            "label": label,
            "points": [],
            "count": 0,
            "collection_method": "pointing",
            "recording_id": recording_id,
        }
        for label in dict.fromkeys(absent)
        if label not in by_label
    ]
    lines = []
    for g in groups:
        if g["count"] and g["label"] is not None:
            xy = sorted((round(p["x"], 1), round(p["y"], 1)) for p in g["points"])
            label = g["label"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            alt = label.replace('"', "&quot;").replace("'", "&#x27;")
            if len(xy) == 1:
                lines.append(f'<point x="{xy[0][0]:0.1f}" y="{xy[0][1]:0.1f}" alt="{alt}">{label}</point>')
            else:
                pairs = " ".join(f'x{i}="{x:0.1f}" y{i}="{y:0.1f}"' for i, (x, y) in enumerate(xy, start=1))
                lines.append(f'<points {pairs} alt="{alt}">{label}</points>')
    return groups, "\n".join(lines) if lines else None


def test_one_pass_points_give_the_same_bytes_as_two_passes() -> None:
    import random

    import orjson

    rng = random.Random(13)
    edges = [0.0, -0.0, -0.0004, 0.0004, 0.0005, 0.00049, 0.5, 0.995, 0.9995, 1.0, 1.0004, 1.5, 0.123456]
    labels = ["deck chair", 'the "big" one', "a<b & c", None, "gull"]
    for case in range(400):
        points = [
            {
                "x": rng.choice(edges) if rng.random() < 0.3 else rng.random(),
                "y": rng.choice(edges) if rng.random() < 0.3 else rng.random(),
                "t": 1.0,
                "label": rng.choice(labels),
            }
            for _ in range(rng.randint(0, 9))
        ]
        absent = rng.sample(["person", "deck chair", "boat"], rng.randint(0, 3))
        lines: list[str] = []
        groups = take_points(points, absent, case, lines)
        expected_groups, expected_text = _reference_groups_and_text(points, absent, case)
        got = {"points": groups, "points_text": "\n".join(lines) if lines else None}
        assert orjson.dumps(got) == orjson.dumps({"points": expected_groups, "points_text": expected_text})


def test_pixmo_points_format_has_pixmo_points_columns_and_features(seeded, tmp_path) -> None:
    out = tmp_path / "pp"
    manifest = run_json(
        "export", "Deck", "--out", str(out), "--format", "pixmo-points", "--with-media", "--split", "100,0,0"
    )
    files = [f for f in manifest["files"] if f["format"] == "pixmo-points"]
    assert [f["path"] for f in files] == ["train.pixmo_points.jsonl"]
    assert manifest["pixmo_points"] == {"train": 3, "validation": 0, "test": 0}
    lines = read_lines(out / "train.pixmo_points.jsonl")
    assert [list(line) for line in lines] == [list(PIXMO_POINTS_FEATURES)] * 3
    sha = seeded.pointed.sha256
    assert [(line["label"], line["count"], line["image_sha256"]) for line in lines] == [
        ("deck chair", 3, sha),
        ("boat", 1, sha),
        ("person", 0, sha),
    ]
    assert lines[1]["points"] == [{"x": 33.3, "y": 66.7}] and lines[2]["points"] == []
    # image_url is the image in the export (with --with-media), and its hash is the row's.
    assert hashlib.sha256((out / lines[0]["image_url"]).read_bytes()).hexdigest() == sha
    # `datasets` loads the file by itself, and the folder's pixmo_points config, with PixMo-Points' features.
    one = datasets.load_dataset(
        "json", data_files={"train": str(out / "train.pixmo_points.jsonl")}, cache_dir=str(tmp_path / "hf")
    )["train"]
    assert len(one) == 3 and one[0]["points"][0] == {"x": 50.0, "y": 25.0}
    folder = datasets.load_dataset(str(out), "pixmo_points", cache_dir=str(tmp_path / "hf2"))["train"]
    assert folder.features == PIXMO_POINTS_FEATURES and len(folder) == 3
    assert "pixmo_points" in (out / "README.md").read_text()
    # Without links or media there is no image_url to give: refused with the fix, nothing written.
    refused = run_cli("export", "Deck", "--out", str(tmp_path / "x"), "--format", "pixmo-points", check=False)
    assert refused.returncode != 0 and "VOICECAP_PUBLIC_BASE_URL" in refused.stdout + refused.stderr
    assert not (tmp_path / "x" / "manifest.json").exists()


def test_localized_narratives_carry_the_trace(seeded, tmp_path) -> None:
    out = tmp_path / "ln"
    run_json("export", "Walk", "--out", str(out), "--format", "localized-narratives", "--split", "100,0,0")
    (line,) = read_lines(out / "train.localized_narratives.jsonl")
    narrative = LocalizedNarrative(**line)
    traces = [[TimedPoint(**p) for p in stroke] for stroke in narrative.traces]
    assert traces == [
        [TimedPoint(0.1, 0.2, 0.05), TimedPoint(0.15, 0.25, 0.1)],
        [TimedPoint(0.8, 0.7, 1.2)],
    ]
    assert [TimedUtterance(**u) for u in narrative.timed_caption] == [
        TimedUtterance("Three", 0.0, 0.4),
        TimedUtterance("deck", 0.4, 0.9),
        TimedUtterance("chairs.", 0.9, 1.5),
    ]
    assert json.loads(json.dumps(line)) == line
