"""Image ingestion end to end, on SQLite and PostgreSQL: real files, real HTTP, the real CLI."""

from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from annotate.services import ingest as service
from annotate.services.ingest import IngestSummary, ingest, ingest_bytes, items_from_source
from annotate.services.projects import ProjectSpec, create_project
from db.blobstore import BlobStore
from db.models import Image
from db.settings import Settings
from tests.conftest import EXAMPLES
from tests.support.cli import run_cli
from tests.test_imaging import bomb_png, encode, quadrant_image

EXAMPLE_IMAGES = EXAMPLES / "images"
N_EXAMPLES = len(list(EXAMPLE_IMAGES.glob("*.jpg")))
BOMB_REASON = "decompression bomb: 900000000 pixels exceeds the limit of 89478485"


@pytest.fixture
def project_id(session: Session) -> int:
    project = create_project(session, ProjectSpec(name="birds"))
    session.commit()
    return project.id


def run(
    engine: Engine, blobs: BlobStore, settings: Settings, project_id: int, source: Path | str, **kw: object
):
    """Ingest without threads (workers=1) unless a test asks for them."""
    kw.setdefault("workers", 1)
    items = items_from_source(str(source), allow_outside=bool(kw.pop("allow_outside", False)))
    return ingest(engine, blobs, settings, project_id, items, **kw)


def rows(session: Session, project_id: int) -> list[Image]:
    session.expire_all()
    return list(session.scalars(select(Image).where(Image.project_id == project_id).order_by(Image.id)))


def reasons(summary: IngestSummary) -> dict[str, str]:
    return {Path(r.path).name: r.reason for r in summary.rejected}


def bad_folder(tmp_path: Path) -> Path:
    """The good example photos next to one of every kind of bad file."""
    folder = tmp_path / "incoming"
    shutil.copytree(EXAMPLE_IMAGES, folder)
    (folder / "nested").mkdir()
    jpeg = encode(quadrant_image((800, 600)), "JPEG", quality=90)
    (folder / "nested" / "good.jpg").write_bytes(jpeg)
    (folder / "nested" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "notes.jpg").write_text("shopping list: eggs, milk\n")
    (folder / "bomb.png").write_bytes(bomb_png(30_000, 30_000))
    (folder / "empty.png").write_bytes(b"")
    (folder / "float.tif").write_bytes(encode(PILImage.new("F", (8, 8)), "TIFF"))
    (folder / "gone.jpg").symlink_to(folder / "deleted-long-ago.jpg")
    (folder / ".hidden.jpg").write_bytes(jpeg)  # hidden: skipped
    (folder / "README.txt").write_text("not an image extension: ignored, not rejected\n")
    return folder


BAD_REASONS = {
    "truncated.jpg": "corrupt or truncated image: image file is truncated",
    "notes.jpg": "not an image: Pillow cannot identify the file's format",
    "bomb.png": BOMB_REASON,
    "empty.png": "empty file (0 bytes)",
    "float.tif": "unsupported mode F (32-bit floating point): convert it to 8-bit RGB or greyscale",
    "gone.jpg": "cannot read: broken symbolic link",
}


def assert_bad_reasons(summary: IngestSummary) -> None:
    got = reasons(summary)
    assert set(got) == set(BAD_REASONS), got
    for name, expected in BAD_REASONS.items():
        assert got[name].startswith(expected), (name, got[name])


def test_ingesting_the_examples_twice_adds_them_once(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int
) -> None:
    first = run(engine, blobs, settings, project_id, EXAMPLE_IMAGES)
    assert first.to_json() == {"added": N_EXAMPLES, "duplicate": 0, "rejected": []}
    second = run(engine, blobs, settings, project_id, EXAMPLE_IMAGES)
    assert second.to_json() == {"added": 0, "duplicate": N_EXAMPLES, "rejected": []}

    images = rows(session, project_id)
    assert len(images) == N_EXAMPLES
    for image in images:
        original = Path(image.source)
        assert original.parent == EXAMPLE_IMAGES.absolute()
        # The blob is the untouched original; the thumbnail is a real JPEG of at most 512 px.
        assert blobs.read_bytes(image.blob_key) == original.read_bytes()
        assert image.blob_key.endswith(f"{image.sha256}.jpg")
        with PILImage.open(blobs.path(image.thumb_key)) as thumbnail:
            assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 512
        assert image.format == "JPEG" and image.done_count == 0
    cat = next(i for i in images if i.source.endswith("chelsea_exif_rotated.jpg"))
    assert (cat.width, cat.height) == (451, 300)
    assert cat.meta == {"exif_orientation": 6}


def test_bad_files_are_reported_and_good_ones_added(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    folder = bad_folder(tmp_path)
    report = tmp_path / "out" / "rejected.jsonl"
    summary = run(engine, blobs, settings, project_id, folder, report_path=report)
    assert summary.added == N_EXAMPLES + 1
    assert summary.duplicate == 0
    assert_bad_reasons(summary)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert lines == [r.to_json() for r in summary.rejected]
    assert {Path(i.source).name for i in rows(session, project_id)} == {
        *(p.name for p in EXAMPLE_IMAGES.glob("*.jpg")),
        "good.jpg",
    }


def test_worker_threads_give_the_same_result_in_input_order(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    folder = bad_folder(tmp_path)
    calls: list[tuple[int, int | None]] = []
    items = list(items_from_source(str(folder)))
    summary = ingest(
        engine,
        blobs,
        settings,
        project_id,
        items,
        lambda d, t: calls.append((d, t)),
        total=len(items),
        workers=3,
    )
    assert summary.added == N_EXAMPLES + 1
    assert_bad_reasons(summary)
    assert calls[-1] == (len(items), len(items)) and [d for d, _ in calls] == list(range(1, len(items) + 1))
    # Rows come back in input (sorted) order even though several threads did the work.
    sources = [i.source for i in rows(session, project_id)]
    assert sources == [i.source for i in items if Path(i.source).name not in BAD_REASONS]


def test_same_bytes_under_two_names_is_one_image(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    shutil.copy(EXAMPLE_IMAGES / "coffee.jpg", folder / "a.jpg")
    shutil.copy(EXAMPLE_IMAGES / "coffee.jpg", folder / "b.jpg")
    summary = run(engine, blobs, settings, project_id, folder)
    assert (summary.added, summary.duplicate) == (1, 1)
    assert [Path(i.source).name for i in rows(session, project_id)] == ["a.jpg"]


def test_rerun_resumes_without_decoding_known_images(
    engine: Engine,
    blobs: BlobStore,
    settings: Settings,
    session: Session,
    project_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(p.name for p in EXAMPLE_IMAGES.glob("*.jpg"))
    for name in names[:3]:  # a first run that saw only half the folder (as if it was interrupted)
        shutil.copy(EXAMPLE_IMAGES / name, folder / name)
    assert run(engine, blobs, settings, project_id, folder).added == 3
    for name in names[3:]:
        shutil.copy(EXAMPLE_IMAGES / name, folder / name)

    decoded: list[str] = []
    real_inspect = service.inspect_image

    def counting_inspect(data: bytes, max_pixels: int, **kw: object):
        decoded.append(str(kw.get("name")))
        return real_inspect(data, max_pixels, **kw)

    monkeypatch.setattr(service, "inspect_image", counting_inspect)
    summary = run(engine, blobs, settings, project_id, folder)
    assert (summary.added, summary.duplicate) == (len(names) - 3, 3)
    assert sorted(Path(d).name for d in decoded) == names[3:]  # the three known ones were never decoded
    assert len(rows(session, project_id)) == len(names)


def test_a_row_added_meanwhile_by_another_ingest_counts_as_duplicate(
    engine: Engine,
    blobs: BlobStore,
    settings: Settings,
    session: Session,
    project_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(engine, blobs, settings, project_id, EXAMPLE_IMAGES)
    # As if another process inserted these after this run loaded the project's hashes:
    # the INSERT ... ON CONFLICT DO NOTHING must count them as duplicates, not fail the run.
    monkeypatch.setattr(service, "_known_digests", lambda *_: b"")
    summary = run(engine, blobs, settings, project_id, EXAMPLE_IMAGES)
    assert summary.to_json() == {"added": 0, "duplicate": N_EXAMPLES, "rejected": []}
    assert len(rows(session, project_id)) == N_EXAMPLES


def test_csv_manifest_keeps_metadata_columns(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    (tmp_path / "imgs").mkdir()
    shutil.copy(EXAMPLE_IMAGES / "rocket.jpg", tmp_path / "imgs" / "rocket.jpg")
    (tmp_path / "a-folder.jpg").mkdir()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "\ufeffpath,split,photographer\n"  # with the byte-order mark spreadsheets write
        "imgs/rocket.jpg,train,SpaceX\n"
        f"{EXAMPLE_IMAGES / 'coins.jpg'},val,\n"
        ",test,nobody\n"
        "a-folder.jpg,test,x\n"
        "missing.jpg,test,x\n",
        encoding="utf-8",
    )
    summary = run(engine, blobs, settings, project_id, manifest, allow_outside=True)  # coins.jpg is absolute
    assert summary.added == 2
    assert [(Path(r.path).name, r.reason) for r in summary.rejected] == [
        ("manifest.csv:4", "manifest line 4: no path or url"),
        ("a-folder.jpg", "cannot read: it is a folder, not a file"),
        ("missing.jpg", "cannot read: file not found"),
    ]
    by_name = {Path(i.source).name: i for i in rows(session, project_id)}
    assert by_name["rocket.jpg"].meta == {"split": "train", "photographer": "SpaceX"}
    assert by_name["rocket.jpg"].source == str((tmp_path / "imgs" / "rocket.jpg").absolute())
    assert by_name["coins.jpg"].meta == {"split": "val"}  # empty cells are dropped


def test_jsonl_manifest_keeps_metadata_and_reports_bad_lines(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.jsonl"
    lines = [
        json.dumps(
            {"image": str(EXAMPLE_IMAGES / "astronaut.jpg"), "tags": ["space", "portrait"], "year": 1995}
        ),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps({"path": str(EXAMPLE_IMAGES / "coffee.jpg"), "source_id": 7}),
    ]
    manifest.write_text("\n".join(lines) + "\n")
    summary = run(engine, blobs, settings, project_id, manifest, allow_outside=True)  # absolute paths
    assert summary.added == 2
    assert [r.reason for r in summary.rejected] == [
        "manifest line 2: not valid JSON (Expecting property name enclosed in double quotes, column 2)",
        "manifest line 3: not a JSON object",
    ]
    metas = {Path(i.source).name: i.meta for i in rows(session, project_id)}
    assert metas == {
        "astronaut.jpg": {"tags": ["space", "portrait"], "year": 1995},
        "coffee.jpg": {"source_id": 7},
    }


def test_manifest_without_an_image_column_is_refused_before_anything_runs(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("name,split\na,train\n")
    with pytest.raises(InvalidInput, match="names no image column"):
        list(items_from_source(str(manifest)))


@pytest.fixture
def http_images(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on a loopback port serving a folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_url_list_is_fetched_over_http(
    engine: Engine,
    blobs: BlobStore,
    settings: Settings,
    session: Session,
    project_id: int,
    tmp_path: Path,
    http_images: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, root = http_images
    shutil.copy(EXAMPLE_IMAGES / "rocket.jpg", root / "rocket.jpg")
    shutil.copy(EXAMPLE_IMAGES / "hubble_deep_field.jpg", root / "big.jpg")  # 528 kB
    (root / "page.jpg").write_text("<html>not found, but served with 200</html>")
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "# images for the birds project\n"
        f"{base}/rocket.jpg\n\n"
        f"{base}/big.jpg\n"
        f"{base}/nowhere.jpg\n"
        f"{base}/page.jpg\n"
        f"http://127.0.0.1:{closed_port()}/x.jpg\n"
    )
    monkeypatch.setattr(settings, "max_image_mb", 0.3)
    monkeypatch.setattr(settings, "ingest_allow_private_urls", True)  # the test server is on loopback
    summary = run(engine, blobs, settings, project_id, urls)
    assert summary.added == 1
    got = {r.path.rsplit("/", 1)[1]: r.reason for r in summary.rejected}
    assert got["big.jpg"] == "too large: 0.5 MB exceeds the limit of 0.3 MB"
    assert got["nowhere.jpg"] == "download failed: HTTP 404 File not found"
    assert got["page.jpg"] == "not an image: Pillow cannot identify the file's format"
    assert got["x.jpg"].startswith("download failed: cannot connect")
    (image,) = rows(session, project_id)
    assert image.source == f"{base}/rocket.jpg"
    assert blobs.read_bytes(image.blob_key) == (EXAMPLE_IMAGES / "rocket.jpg").read_bytes()


def test_zip_archive_and_uploaded_bytes(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int, tmp_path: Path
) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(EXAMPLE_IMAGES / "coins.jpg", "photos/coins.jpg")
        zf.writestr("photos/broken.png", b"\x89PNG\r\n\x1a\n garbage")
        zf.writestr("__MACOSX/photos/._coins.jpg", b"resource fork")
        zf.writestr("photos/notes.md", b"ignored")
    summary = run(engine, blobs, settings, project_id, archive)
    assert summary.added == 1
    assert [(r.path.split("!/")[1], r.reason.split(":")[0]) for r in summary.rejected] == [
        ("photos/broken.png", "corrupt or truncated image")
    ]
    assert rows(session, project_id)[0].source == f"{archive.absolute()}!/photos/coins.jpg"

    uploaded = ingest_bytes(
        engine,
        blobs,
        settings,
        project_id,
        [("coins.jpg", (EXAMPLE_IMAGES / "coins.jpg").read_bytes()), ("cat.jpg", b"meow")],
    )
    assert uploaded.to_json() == {
        "added": 0,
        "duplicate": 1,
        "rejected": [{"path": "cat.jpg", "reason": "not an image: Pillow cannot identify the file's format"}],
    }


def test_cli_json_and_report(settings: Settings, engine: Engine, project_id: int, tmp_path: Path) -> None:
    folder = bad_folder(tmp_path)
    report = tmp_path / "rejected.jsonl"
    result = run_cli("ingest", "birds", str(folder), "--json", "--report", str(report))
    summary = json.loads(result.stdout)  # stdout is only the JSON object
    assert set(summary) == {"added", "duplicate", "rejected"}
    assert summary["added"] == N_EXAMPLES + 1 and summary["duplicate"] == 0
    got = {Path(r["path"]).name: r["reason"] for r in summary["rejected"]}
    assert got["bomb.png"] == BOMB_REASON and set(got) == set(BAD_REASONS)
    assert [json.loads(line) for line in report.read_text().splitlines()] == summary["rejected"]

    again = run_cli("ingest", "birds", str(folder))  # the human summary, on a re-run
    assert "Ingest summary" in again.stdout and "duplicate" in again.stdout
    assert "decompression bomb" in again.stdout and "empty file (0 bytes)" in again.stdout
    assert f"{N_EXAMPLES + 1}" in again.stdout


def test_cli_refuses_a_missing_source_or_project(settings: Settings, engine: Engine, project_id: int) -> None:
    missing = run_cli("ingest", "birds", "/no/such/folder", check=False)
    assert missing.returncode == 1 and "/no/such/folder does not exist" in missing.stderr
    no_project = run_cli("ingest", "nope", str(EXAMPLE_IMAGES), check=False)
    assert no_project.returncode == 1 and "No project named 'nope'" in no_project.stderr


def test_thumbnail_of_large_upload_is_small(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, project_id: int
) -> None:
    data = encode(quadrant_image((3000, 2000)), "PNG")
    summary = ingest_bytes(engine, blobs, settings, project_id, [("wide.png", data)])
    assert summary.added == 1
    (image,) = rows(session, project_id)
    assert (image.width, image.height, image.format) == (3000, 2000, "PNG")
    assert image.blob_key.endswith(".png")
    with PILImage.open(io.BytesIO(blobs.read_bytes(image.thumb_key))) as thumbnail:
        assert thumbnail.size == (512, 341)
