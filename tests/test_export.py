"""Dataset export on both databases: caption choice, filters, splits, files, manifest, crash safety."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotate.errors import Conflict, InvalidInput
from annotate.services import export as export_service
from annotate.services.export import ExportFilter, ExportOptions, SplitSpec, export_dataset, verify_export
from db.blobstore import BlobStore
from db.models import (
    Caption,
    CaptionKind,
    Image,
    Project,
    Recording,
    RecordingStatus,
    ReviewDecision,
    Transcript,
    User,
)
from tests.support import factories
from tests.support.server import login

SPEECH = Path(__file__).resolve().parent / "fixtures" / "speech"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "correct-horse"


@dataclass
class ExportSeed:
    project: Project
    other: Project
    lead: User
    annotators: list[User]
    images: dict[str, Image] = field(default_factory=dict)
    captions: dict[str, Caption] = field(default_factory=dict)
    recordings: dict[str, Recording] = field(default_factory=dict)


def png_bytes(index: int, size: tuple[int, int] = (32, 24)) -> bytes:
    """A small distinct PNG per index (distinct bytes, so distinct sha256)."""
    picture = PILImage.new("RGB", size, ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256))
    picture.putpixel((0, 0), (index % 256, index // 256 % 256, 7))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def add_image(session: Session, blobs: BlobStore, project: Project, index: int) -> Image:
    return factories.add_image(
        session,
        project,
        blobs=blobs,
        data=png_bytes(index),
        suffix=".png",
        source=f"/photos/harbour/{index:04d}.png",
        width=32,
        height=24,
        format="PNG",
        created_at=BASE,
    )


def add_recording(
    session: Session,
    blobs: BlobStore,
    image: Image,
    user: User,
    text: str,
    *,
    status: RecordingStatus = RecordingStatus.captioned,
    when: datetime = BASE,
) -> tuple[Recording, Transcript]:
    """A take of desk.webm and its transcript `text` (with word timings the export leaves out)."""
    recording = factories.add_recording(
        session,
        image,
        user,
        blobs=blobs,
        audio=SPEECH / "desk.webm",
        duration_seconds=61.5,
        status=status,
        created_at=when,
    )
    transcript = factories.add_transcript(
        session,
        recording,
        text,
        segments=[{"start": 0.0, "end": 2.5, "text": text, "avg_logprob": -0.2}],
        words=[{"start": 0.0, "end": 0.4, "word": "x", "probability": 0.9}],  # not exported
        created_at=when,
    )
    return recording, transcript


def add_caption(
    session: Session,
    image: Image,
    text: str,
    *,
    status: str = "pending",
    when: datetime = BASE,
    transcript: Transcript | None = None,
    kind: CaptionKind = CaptionKind.single,
    parent: Caption | None = None,
    version: str = "v1",
) -> Caption:
    """A caption whose text says "flagged" to be flagged; an edit is the reviewer's, unscored."""
    return factories.add_caption(
        session,
        image,
        text,
        transcript=transcript,
        parent_id=parent.id if parent else None,
        kind=kind,
        cleaner="human" if kind is CaptionKind.edited else "rules",
        prompt_version=version,
        faithfulness=None if kind is CaptionKind.edited else 0.95,
        flags=["long_sentence"] if "flagged" in text else [],
        flagged="flagged" in text,
        status=status,
        created_at=when,
    )


def seed_export(session: Session, blobs: BlobStore, extra_approved: int = 6) -> ExportSeed:
    """A project with one image in each situation an export must tell apart; committed.

    approved: approved single caption. edited: original superseded, reviewer's edit approved.
    pending: caption awaiting review. rejected: only caption rejected. bare: no recording yet.
    merged: two annotators, one merged caption approved. versions: v1 approved, newer v2 pending.
    dropped_take: approved caption, plus a rejected recording whose transcript must not appear.
    Then `extra_approved` more approved images, and one approved image in another project.
    """
    project = factories.add_project(session, "Harbour", min_seconds=5.0, max_seconds=120.0)
    other = factories.add_project(session, "Elsewhere", min_seconds=5.0, max_seconds=120.0)
    lead = factories.add_user(session, "lena", "lead", PASSWORD)
    annotators = [
        factories.add_user(session, name, "annotator", PASSWORD) for name in ("annika", "bartholomew")
    ]
    ann, bob = annotators
    seed = ExportSeed(project=project, other=other, lead=lead, annotators=annotators)
    counter = iter(range(10_000))

    def image(name: str, target: Project = project) -> Image:
        seed.images[name] = add_image(session, blobs, target, next(counter))
        return seed.images[name]

    day = timedelta(days=1)
    img = image("approved")
    rec, tr = add_recording(session, blobs, img, ann, "a red boat in a harbour")
    seed.recordings["approved"] = rec
    seed.captions["approved"] = add_caption(
        session, img, "A red boat in a harbour.", status="approved", when=BASE + day, transcript=tr
    )
    factories.add_review(
        session, seed.captions["approved"], lead, ReviewDecision.approve, created_at=BASE + 2 * day
    )

    img = image("edited")
    rec, tr = add_recording(session, blobs, img, bob, "two gulls on a post flagged")
    original = add_caption(
        session, img, "Two gulls on a post, flagged.", status="superseded", when=BASE + day, transcript=tr
    )
    seed.captions["edited_original"] = original
    seed.captions["edited"] = add_caption(
        session,
        img,
        "Two white gulls stand on a wooden post.",
        status="approved",
        when=BASE + 3 * day,
        transcript=tr,
        kind=CaptionKind.edited,
        parent=original,
    )
    factories.add_review(session, original, lead, ReviewDecision.edit, created_at=BASE + 3 * day)

    img = image("pending")
    rec, tr = add_recording(session, blobs, img, ann, "a lighthouse at dusk")
    add_caption(session, img, "An early lighthouse caption.", status="superseded", when=BASE, transcript=tr)
    seed.captions["pending"] = add_caption(
        session, img, "A lighthouse at dusk.", status="pending", when=BASE + 4 * day, transcript=tr
    )

    img = image("rejected")
    rec, tr = add_recording(session, blobs, img, bob, "um")
    seed.captions["rejected"] = add_caption(
        session, img, "Um.", status="rejected", when=BASE + day, transcript=tr
    )
    factories.add_review(
        session, seed.captions["rejected"], lead, ReviewDecision.reject, created_at=BASE + 2 * day
    )

    image("bare")

    img = image("merged")
    add_recording(session, blobs, img, ann, "a fishing net on the quay")
    add_recording(session, blobs, img, bob, "green net and orange floats")
    seed.captions["merged"] = add_caption(
        session,
        img,
        "A green fishing net with orange floats lies on the quay.",
        status="approved",
        when=BASE + 5 * day,
        kind=CaptionKind.merged,
    )

    img = image("versions")
    rec, tr = add_recording(session, blobs, img, ann, "a crane and containers")
    seed.captions["versions_v1"] = add_caption(
        session, img, "A crane over containers.", status="approved", when=BASE + day, transcript=tr
    )
    seed.captions["versions_v2"] = add_caption(
        session,
        img,
        "A yellow crane lifts containers.",
        status="pending",
        when=BASE + 6 * day,
        transcript=tr,
        version="v2",
    )

    img = image("dropped_take")
    rec, tr = add_recording(session, blobs, img, ann, "a rowing boat")
    seed.captions["dropped_take"] = add_caption(
        session, img, "A small rowing boat.", status="approved", when=BASE + day, transcript=tr
    )
    add_recording(session, blobs, img, bob, "secret words of a dropped take", status=RecordingStatus.rejected)

    for n in range(extra_approved):
        img = image(f"extra{n}")
        rec, tr = add_recording(session, blobs, img, ann if n % 2 else bob, f"extra scene number {n}")
        add_caption(session, img, f"Extra scene {n}.", status="approved", when=BASE + 2 * day, transcript=tr)

    img = image("other", other)
    rec, tr = add_recording(session, blobs, img, ann, "another project")
    add_caption(session, img, "Another project.", status="approved", when=BASE + day, transcript=tr)
    session.commit()
    return seed


@pytest.fixture
def seeded(session, blobs) -> ExportSeed:
    return seed_export(session, blobs)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_rows(out: Path) -> list[dict]:
    rows = []
    for split in ("train", "validation", "test"):
        if (out / f"{split}.jsonl").exists():
            rows.extend(read_lines(out / f"{split}.jsonl"))
    return sorted(rows, key=lambda r: r["image_id"])


def run_export(engine, blobs, project, out: Path, **kwargs) -> dict:
    filter_args = {k: kwargs.pop(k) for k in ("state", "since", "until", "caption_version") if k in kwargs}
    options = ExportOptions(filter=ExportFilter(project_id=project.id, **filter_args), **kwargs)
    return export_dataset(engine, blobs, project, options, out)


def test_approved_export_round_trips(engine, blobs, session, seeded, tmp_path) -> None:
    out = tmp_path / "export"
    manifest = run_export(engine, blobs, seeded.project, out, formats=("jsonl", "parquet"))
    rows = all_rows(out)

    # Counts match the database: images of this project with an approved caption, counted in SQL.
    approved_in_db = session.scalar(
        select(func.count(func.distinct(Image.id)))
        .join(Caption, Caption.image_id == Image.id)
        .where(Image.project_id == seeded.project.id, Caption.status == "approved")
    )
    assert len(rows) == approved_in_db == 5 + 6
    assert manifest["counts"]["images"] == len(rows) == manifest["counts"]["selected_at_start"]
    assert sum(manifest["counts"]["splits"].values()) == len(rows)
    by_name = {name: image.id for name, image in seeded.images.items()}
    got = {r["image_id"]: r for r in rows}
    assert set(got) == {by_name[n] for n in ("approved", "edited", "merged", "versions", "dropped_take")} | {
        by_name[f"extra{n}"] for n in range(6)
    }

    # The caption: the approved one, a reviewer's edit over its superseded original.
    assert got[by_name["approved"]]["caption"] == "A red boat in a harbour."
    edited = got[by_name["edited"]]
    assert edited["caption"] == "Two white gulls stand on a wooden post."
    assert edited["caption_id"] == seeded.captions["edited"].id
    assert [(c["kind"], c["status"], c["chosen"]) for c in edited["captions"]] == [
        ("single", "superseded", False),
        ("edited", "approved", True),
    ]
    assert edited["captions"][1]["parent_id"] == seeded.captions["edited_original"].id
    assert edited["captions"][0]["flags"] == ["long_sentence"] and edited["captions"][0]["flagged"] is True
    assert edited["review"]["decision"] == "edit" and edited["review"]["reviewer"] == seeded.lead.pseudonym
    # The approved v1 wins over a newer pending v2.
    assert got[by_name["versions"]]["caption"] == "A crane over containers."
    merged = got[by_name["merged"]]
    assert merged["transcripts"] == ["a fishing net on the quay", "green net and orange floats"]
    assert [r["annotator"] for r in merged["recordings"]] == [a.pseudonym for a in seeded.annotators]
    assert merged["review"] is None
    # A rejected take's transcript stays out.
    assert got[by_name["dropped_take"]]["transcripts"] == ["a rowing boat"]

    row = got[by_name["approved"]]
    image = seeded.images["approved"]
    assert row["sha256"] == image.sha256 and (row["width"], row["height"]) == (32, 24)
    assert row["project"] == "Harbour" and row["image_url"] is None
    assert row["image_path"] == str(blobs.path(image.blob_key))
    assert hashlib.sha256(Path(row["image_path"]).read_bytes()).hexdigest() == image.sha256
    recording = row["recordings"][0]
    assert recording["seconds"] == 61.5 and recording["language"] == "en"
    assert recording["segments"] == [{"start": 0.0, "end": 2.5, "text": "a red boat in a harbour"}]
    assert Path(recording["audio_path"]).is_file()

    # Pseudonyms only: no user name anywhere in the files.
    text = "".join(
        (out / f["path"]).read_text(encoding="utf-8") for f in manifest["files"] if f["format"] == "jsonl"
    )
    for name in ("lena", "annika", "bartholomew"):
        assert name not in text

    # The manifest vouches for every file by sha256 and row count.
    assert verify_export(out) == []
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {f["path"] for f in manifest["files"]} == {p.name for p in out.iterdir()} - {"manifest.json"}
    assert manifest["filters"]["state"] == "approved" and manifest["code_version"]["voicecap"]
    assert json.loads((out / "manifest.json").read_text()) == manifest

    # Parquet holds the same rows.
    frames = [pd.read_parquet(out / f["path"]) for f in manifest["files"] if f["format"] == "parquet"]
    frame = pd.concat(frames).sort_values("image_id")
    assert frame["image_id"].tolist() == [r["image_id"] for r in rows]
    assert frame["caption"].tolist() == [r["caption"] for r in rows]
    assert (
        list(frame.loc[frame.image_id == by_name["merged"], "transcripts"].iloc[0]) == merged["transcripts"]
    )


def test_hugging_face_datasets_and_pandas_load_the_files(engine, blobs, seeded, tmp_path) -> None:
    datasets = pytest.importorskip("datasets", reason="pip install datasets (in the test extra)")
    out = tmp_path / "export"
    # Every image in train and test, so two non-empty splits; `all` brings null captions and empty lists.
    manifest = run_export(
        engine,
        blobs,
        seeded.project,
        out,
        state="all",
        split=SplitSpec(50, 0, 50),
        formats=("jsonl", "parquet"),
    )
    files = {f["split"]: str(out / f["path"]) for f in manifest["files"] if f["format"] == "jsonl"}
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    assert {split: len(loaded[split]) for split in files} == {
        split: manifest["counts"]["splits"][split] for split in files
    }
    assert sum(len(loaded[s]) for s in files) == len(seeded.images) - 1  # all but the other project's
    for split in files:
        expected = read_lines(Path(files[split]))
        assert loaded[split]["image_id"] == [r["image_id"] for r in expected]
        assert loaded[split]["caption"] == [r["caption"] for r in expected]
        assert loaded[split]["transcripts"] == [r["transcripts"] for r in expected]
        frame = pd.read_json(files[split], lines=True)
        assert frame["sha256"].tolist() == [r["sha256"] for r in expected]
    # The Parquet files carry a fixed schema: the robust choice for very large exports.
    parquet = {f["split"]: str(out / f["path"]) for f in manifest["files"] if f["format"] == "parquet"}
    from_parquet = datasets.load_dataset("parquet", data_files=parquet, cache_dir=str(tmp_path / "hf-cache"))
    for split in files:
        expected = read_lines(Path(files[split]))
        assert from_parquet[split]["image_id"] == loaded[split]["image_id"]
        assert from_parquet[split]["caption"] == [r["caption"] for r in expected]
        texts = [[c["text"] for c in captions] for captions in from_parquet[split]["captions"]]
        assert texts == [[c["text"] for c in r["captions"]] for r in expected]


def test_state_captioned_and_all(engine, blobs, seeded, tmp_path) -> None:
    ids = {name: image.id for name, image in seeded.images.items()}
    captioned = {
        r["image_id"]: r for r in _export_rows(engine, blobs, seeded, tmp_path / "c", state="captioned")
    }
    assert ids["pending"] in captioned and ids["rejected"] not in captioned and ids["bare"] not in captioned
    assert captioned[ids["pending"]]["caption"] == "A lighthouse at dusk."
    # Approved still beats a newer pending caption.
    assert captioned[ids["versions"]]["caption"] == "A crane over containers."

    everything = {r["image_id"]: r for r in _export_rows(engine, blobs, seeded, tmp_path / "a", state="all")}
    assert set(everything) == {i.id for n, i in seeded.images.items() if n != "other"}
    assert (
        everything[ids["rejected"]]["caption"] is None and everything[ids["rejected"]]["caption_id"] is None
    )
    assert everything[ids["rejected"]]["review"]["decision"] == "reject"
    assert everything[ids["bare"]]["caption"] is None and everything[ids["bare"]]["transcripts"] == []
    assert everything[ids["bare"]]["captions"] == [] and everything[ids["bare"]]["recordings"] == []


def _export_rows(engine, blobs, seeded, out, **kwargs) -> list[dict]:
    run_export(engine, blobs, seeded.project, out, **kwargs)
    return all_rows(out)


def test_caption_version_and_date_range(engine, blobs, seeded, tmp_path) -> None:
    ids = {name: image.id for name, image in seeded.images.items()}
    v2 = _export_rows(engine, blobs, seeded, tmp_path / "v2", state="captioned", caption_version="v2")
    assert [(r["image_id"], r["caption"]) for r in v2] == [
        (ids["versions"], "A yellow crane lifts containers.")
    ]
    assert _export_rows(engine, blobs, seeded, tmp_path / "v2a", caption_version="v2") == []

    # Captions created in [day 3, day 6): the edit (day 3) and the merged caption (day 5).
    window = _export_rows(
        engine,
        blobs,
        seeded,
        tmp_path / "dates",
        since=BASE + timedelta(days=3),
        until=BASE + timedelta(days=6),
    )
    assert sorted(r["image_id"] for r in window) == sorted([ids["edited"], ids["merged"]])
    with pytest.raises(InvalidInput):
        ExportFilter(project_id=1, since=BASE, until=BASE)
    with pytest.raises(InvalidInput):
        ExportFilter(project_id=1, state="finished")


def test_split_is_deterministic_by_hash_and_stable_across_runs(engine, blobs, seeded, tmp_path) -> None:
    first = run_export(engine, blobs, seeded.project, tmp_path / "one", split=SplitSpec(60, 20, 20))
    # Another run, with other window sizes (so other paging), writes byte-identical files.
    spec = SplitSpec(60, 20, 20)
    second = run_export(engine, blobs, seeded.project, tmp_path / "two", split=spec, window=3)
    # Three processes, each writing an id range to part files appended in order: the same bytes again.
    formats = ("jsonl", "parquet")
    third = run_export(
        engine, blobs, seeded.project, tmp_path / "three", split=spec, workers=3, formats=formats
    )
    assert [(f["path"], f["sha256"]) for f in first["files"]] == [
        (f["path"], f["sha256"]) for f in second["files"]
    ]
    # The data files (the dataset cards differ: the third export also lists its Parquet files).
    assert [(f["path"], f["sha256"], f["rows"]) for f in first["files"] if f["format"] == "jsonl"] == [
        (f["path"], f["sha256"], f["rows"]) for f in third["files"] if f["format"] == "jsonl"
    ]
    assert third["counts"] == first["counts"]
    assert sorted(p.name for p in (tmp_path / "three").iterdir()) == sorted(
        [f["path"] for f in third["files"]] + ["manifest.json"]
    )
    for entry in third["files"]:
        if entry["format"] == "parquet":
            frame = pd.read_parquet(tmp_path / "three" / entry["path"])
            jsonl = read_lines(tmp_path / "one" / entry["path"].replace(".parquet", ".jsonl"))
            assert (
                frame["image_id"].tolist() == [r["image_id"] for r in jsonl] and len(frame) == entry["rows"]
            )
    rows = all_rows(tmp_path / "one")
    for row in rows:
        bucket = int(row["sha256"][:8], 16) % 100
        expected = "train" if bucket < 60 else "validation" if bucket < 80 else "test"
        assert row["split"] == expected
        assert row in read_lines(tmp_path / "one" / f"{expected}.jsonl")
    assert SplitSpec.parse("80,10,10") == SplitSpec(80, 10, 10)
    for bad in ("80,10", "50,50,50", "a,b,c", "-10,60,50"):
        with pytest.raises(InvalidInput):
            SplitSpec.parse(bad)


def test_crash_mid_export_leaves_no_file_under_a_finished_name(
    engine, blobs, seeded, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "export"
    run_export(engine, blobs, seeded.project, out, formats=("jsonl", "parquet"))
    assert (out / "manifest.json").exists()
    real_row = export_service.RowBuilder.row
    calls = {"n": 0}

    def failing_row(self, record):
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError("disk full")
        return real_row(self, record)

    monkeypatch.setattr(export_service.RowBuilder, "row", failing_row)
    with pytest.raises(OSError, match="disk full"):
        run_export(engine, blobs, seeded.project, out, formats=("jsonl", "parquet"), overwrite=True, window=2)
    # The old export's manifest and files are gone, the new one's temp files removed, nothing half-named.
    assert sorted(p.name for p in out.iterdir()) == []
    assert verify_export(out) == [f"{out / 'manifest.json'} is missing: the export did not finish."]


def test_refuses_a_non_empty_directory_without_overwrite(engine, blobs, seeded, tmp_path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Conflict):
        run_export(engine, blobs, seeded.project, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_with_media_copies_images_and_audio_beside_the_rows(engine, blobs, seeded, tmp_path) -> None:
    out = tmp_path / "export"
    manifest = run_export(
        engine, blobs, seeded.project, out, with_media=True, public_base_url="https://vc.example/"
    )
    rows = all_rows(out)
    assert rows and manifest["missing_media"] == []
    for row in rows:
        assert not Path(row["image_path"]).is_absolute()
        assert hashlib.sha256((out / row["image_path"]).read_bytes()).hexdigest() == row["sha256"]
        assert row["image_url"] == f"https://vc.example/api/images/{row['image_id']}/original"
        for recording in row["recordings"]:
            assert (out / recording["audio_path"]).read_bytes() == (SPEECH / "desk.webm").read_bytes()
    # media.sha256 is in `sha256sum -c` format and every line checks out.
    lines = (out / "media.sha256").read_text().splitlines()
    assert len(lines) == len(rows) + 1  # every image, and the one audio file they share
    for line in lines:
        digest, relative = line.split("  ", 1)
        assert hashlib.sha256((out / relative).read_bytes()).hexdigest() == digest
    assert verify_export(out) == []


def test_download_endpoint_streams_jsonl_parquet_and_zip(engine, blobs, seeded, server, make_user) -> None:
    make_user("annie", "annotator")
    lead = login(server, "lena", PASSWORD)
    url = f"/api/projects/{seeded.project.id}/export"
    response = lead.get(url, params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == 11 and all(r["project"] == "Harbour" for r in rows)
    assert [r["image_id"] for r in rows] == sorted(r["image_id"] for r in rows)

    captioned = lead.get(url, params={"format": "jsonl", "state": "captioned", "caption_version": "v2"})
    assert [json.loads(line)["caption"] for line in captioned.text.splitlines()] == [
        "A yellow crane lifts containers."
    ]

    parquet = lead.get(url, params={"format": "parquet"})
    assert parquet.status_code == 200
    frame = pd.read_parquet(io.BytesIO(parquet.content))
    assert sorted(frame["image_id"].tolist()) == sorted(r["image_id"] for r in rows)

    archive = lead.get(url, params={"format": "zip", "split": "100,0,0"})
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        names = set(zipped.namelist())
        assert {"manifest.json", "train.jsonl", "train.parquet"} <= names
        inner = json.loads(zipped.read("manifest.json"))
        assert inner["counts"]["images"] == 11
        assert hashlib.sha256(zipped.read("train.jsonl")).hexdigest() == next(
            f["sha256"] for f in inner["files"] if f["path"] == "train.jsonl"
        )

    assert lead.get(url, params={"format": "csv"}).json()["code"] == "invalid_input"
    assert lead.get(url, params={"split": "1,2"}).status_code == 422
    assert lead.get("/api/projects/999999/export").status_code == 404
    annotator = login(server, "annie", PASSWORD)
    forbidden = annotator.get(url)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "wrong_role"
