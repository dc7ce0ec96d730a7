"""Exports as their users meet them, on both databases: `--profile pixmo-cap` loaded by Hugging Face
`datasets` (folder and files) with PixMo-Cap's features, its image_url downloaded with no session, and
`--format localized-narratives` read by Localized Narratives' own record type."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from annotate.services.export import ExportFilter, ExportOptions, SplitSpec, export_dataset
from annotate.services.media_links import MediaLinks
from tests.support import factories
from tests.support.cli import run_cli, run_json
from tests.support.localized_narratives import LocalizedNarrative, TimedUtterance
from tests.test_export import ExportSeed, add_image, add_recording, seed_export

datasets = pytest.importorskip("datasets", reason="pip install datasets (in the test extra)")

# allenai/pixmo-cap's dataset card: image_url (string), caption (string), transcripts (list of string).
PIXMO_CAP = {
    "image_url": datasets.Value("string"),
    "caption": datasets.Value("string"),
    "transcripts": datasets.List(datasets.Value("string")),
}
PIXMO_CAP_FEATURES = datasets.Features({**PIXMO_CAP, "image_sha256": datasets.Value("string")})
LN_FIELDS = set(LocalizedNarrative._fields)


@pytest.fixture
def seeded(session, blobs) -> ExportSeed:
    return seed_export(session, blobs)


def _load(path: str | dict[str, str], cache: Path, builder: str | None = None) -> datasets.DatasetDict:
    if builder is None:
        return datasets.load_dataset(str(path), cache_dir=str(cache))
    return datasets.load_dataset(builder, data_files=path, cache_dir=str(cache))


def test_pixmo_cap_profile_loads_with_pixmo_caps_features_and_its_urls_download(
    seeded, server, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("VOICECAP_PUBLIC_BASE_URL", server)
    out = tmp_path / "pixmo"
    manifest = run_json(
        "export", "Harbour", "--out", str(out), "--profile", "pixmo-cap", "-f", "jsonl", "-f", "parquet"
    )
    assert manifest["profile"] == "pixmo-cap" and manifest["counts"]["images"] == 11
    written = {f["split"] for f in manifest["files"] if f.get("split")}
    # The folder, by the configs of its README.md.
    folder = _load(str(out), tmp_path / "hf")
    assert set(folder) == written
    rows = [row for split in folder for row in folder[split]]
    assert len(rows) == 11
    for split in folder:
        assert folder[split].features == PIXMO_CAP_FEATURES
    # Each file, by itself, in both formats.
    for entry in (f for f in manifest["files"] if f.get("split")):
        builder = "parquet" if entry["format"] == "parquet" else "json"
        one = _load({"train": str(out / entry["path"])}, tmp_path / "hf", builder)["train"]
        assert one.features == PIXMO_CAP_FEATURES and len(one) == entry["rows"]
    # Every image_url is a signed link that downloads the image without a voicecap session.
    for row in rows:
        assert row["image_url"].startswith(f"{server}/api/media/")
        response = httpx.get(row["image_url"], timeout=30)
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == row["image_sha256"]
        assert row["caption"] and row["transcripts"]
    # The full profile links the same way: code that downloads image_url needs no session either.
    full = run_json("export", "Harbour", "--out", str(tmp_path / "full"), "--split", "100,0,0")
    row = json.loads((tmp_path / "full" / "train.jsonl").read_text().splitlines()[0])
    assert full["profile"] == "full" and row["image_url"].startswith(f"{server}/api/media/")
    assert hashlib.sha256(httpx.get(row["image_url"], timeout=30).content).hexdigest() == row["sha256"]
    # A damaged link is refused, and says why.
    broken = httpx.get(rows[0]["image_url"].replace("/api/media/", "/api/media/x"), timeout=30)
    assert broken.status_code == 401 and broken.json()["code"] == "media_link_invalid"


def test_an_empty_split_is_named_nowhere(seeded, tmp_path) -> None:
    """Everything in train: validation and test have no file, and neither load_with nor the card names one."""
    out = tmp_path / "export"
    manifest = run_json(
        "export", "Harbour", "--out", str(out), "--split", "100,0,0", "--profile", "pixmo-cap", "--with-media"
    )
    assert [f["path"] for f in manifest["files"] if f.get("split")] == ["train.jsonl"]
    card = (out / "README.md").read_text()
    assert "train.jsonl" in card and "validation" not in card and "test.jsonl" not in card
    assert "validation" not in json.dumps(manifest["load_with"])
    assert set(_load(str(out), tmp_path / "hf")) == {"train"}
    # The manifest's own snippet runs as written.
    snippet = manifest["load_with"]["datasets_files"]
    assert snippet.startswith('load_dataset("json", data_files=')
    data_files = json.loads(snippet[len('load_dataset("json", data_files=') : -1])
    loaded = datasets.load_dataset("json", data_files={k: str(out / v) for k, v in data_files.items()})
    # With --with-media image_url is the image's path relative to the export.
    for row in loaded["train"]:
        assert not Path(row["image_url"]).is_absolute()
        assert hashlib.sha256((out / row["image_url"]).read_bytes()).hexdigest() == row["image_sha256"]


def test_pixmo_cap_without_links_or_media_is_refused_with_the_fix(seeded, tmp_path) -> None:
    result = run_cli("export", "Harbour", "--out", str(tmp_path / "x"), "--profile", "pixmo-cap", check=False)
    assert result.returncode != 0
    assert "VOICECAP_PUBLIC_BASE_URL" in result.stderr + result.stdout
    assert not (tmp_path / "x" / "manifest.json").exists()
    unknown = run_cli("export", "Harbour", "--out", str(tmp_path / "y"), "--profile", "coco", check=False)
    assert unknown.returncode != 0 and "Unknown profile" in unknown.stderr + unknown.stdout


def test_localized_narratives_load_with_their_own_record_type(session, blobs, seeded, tmp_path) -> None:
    # An image with two takes whose transcripts carry word timings.
    image = add_image(session, blobs, seeded.project, 900)
    words = [
        {"start": 0.0, "end": 0.32, "word": " A", "probability": 0.9},
        {"start": 0.32, "end": 0.8, "word": " red", "probability": 0.8},
        {"start": 0.8, "end": 1.3, "word": " boat.", "probability": 0.95},
    ]
    takes = []
    for annotator in seeded.annotators:
        recording, transcript = add_recording(session, blobs, image, annotator, "A red boat.")
        transcript.words = words
        takes.append(recording)
    factories.add_caption(session, image, "A red boat.", status="approved", transcript=transcript)
    session.commit()

    out = tmp_path / "ln"
    manifest = run_json("export", "Harbour", "--out", str(out), "--format", "localized-narratives")
    files = [f for f in manifest["files"] if f["format"] == "localized-narratives"]
    assert files and all(f["path"].endswith(".localized_narratives.jsonl") for f in files)
    narratives = []
    for entry in files:
        lines = (out / entry["path"]).read_text(encoding="utf-8").splitlines()
        assert len(lines) == entry["rows"]
        for line in lines:
            data = json.loads(line)
            assert set(data) == LN_FIELDS  # exactly Localized Narratives' fields
            narratives.append(LocalizedNarrative(**data))
    # One narrative per live recording of every exported image.
    images = run_json("export", "Harbour", "--out", str(tmp_path / "rows"))["counts"]
    assert len(narratives) == images["recordings"]
    mine = [n for n in narratives if n.image_id == str(image.id)]
    assert len(mine) == 2 and {n.dataset_id for n in mine} == {"voicecap/Harbour"}
    assert len({n.annotator_id for n in mine}) == 2 and all(isinstance(n.annotator_id, int) for n in mine)
    for narrative in mine:
        assert narrative.caption == "A red boat."
        timed = [TimedUtterance(**u) for u in narrative.timed_caption]
        assert timed == [
            TimedUtterance("A", 0.0, 0.32),
            TimedUtterance("red", 0.32, 0.8),
            TimedUtterance("boat.", 0.8, 1.3),
        ]
        assert narrative.traces == [] and Path(narrative.voice_recording).is_file()
    # No user name or id leaves: the annotator is a number made from the pseudonym.
    text = "".join((out / f["path"]).read_text() for f in files)
    for name in ("annika", "bartholomew"):
        assert name not in text
    # The card names the narratives as a config of their own, which `datasets` loads.
    loaded = datasets.load_dataset(str(out), "localized_narratives", cache_dir=str(tmp_path / "hf"))
    assert sum(len(loaded[s]) for s in loaded) == len(narratives)


def test_narratives_link_signed_audio_that_plays_without_a_session(
    session, blobs, engine, seeded, server, tmp_path
) -> None:
    links = MediaLinks.lasting(server, "test-secret-key", days=1)
    options = ExportOptions(
        filter=ExportFilter(project_id=seeded.project.id),
        split=SplitSpec(100, 0, 0),
        formats=("localized-narratives",),
        links=links,
    )
    manifest = export_dataset(engine, blobs, seeded.project, options, tmp_path / "ln")
    first = json.loads((tmp_path / "ln" / "train.localized_narratives.jsonl").read_text().splitlines()[0])
    assert manifest["localized_narratives"]["train"] >= 1
    response = httpx.get(first["voice_recording"], timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    # An expired link is refused.
    old = MediaLinks.lasting(server, "test-secret-key", days=1, now=0)
    expired = httpx.get(old.audio((1,)), timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
