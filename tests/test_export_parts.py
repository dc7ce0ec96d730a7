"""Large-export machinery on both databases: the run plan, worker failures, and PostgreSQL's query plan."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import Engine, text, update
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from annotate.services.export import ExportFilter, ExportOptions, export_dataset
from annotate.services.export.parts import PartBuilders, PartBuildFailed, PartJob
from annotate.services.export.selection import count_images, plan_parts, window_query
from db.blobstore import BlobStore
from db.models import Image
from tests.support.bulk_seed import bulk_captioned
from tests.test_export import seed_export


def test_plan_parts_cuts_the_selection_into_even_runs_in_id_order(
    session: Session, engine: Engine, blobs: BlobStore
) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    ids = bulk_captioned(session, seeded.project, seeded.annotators[0], 1003)
    flt = ExportFilter(project_id=seeded.project.id)
    total = count_images(engine, flt)

    plan = plan_parts(engine, flt, 8)
    assert len(plan) == 8
    assert sum(count for _last, count in plan) == total
    sizes = [count for _last, count in plan]
    assert max(sizes) - min(sizes) <= 1
    lasts = [last for last, _count in plan]
    assert lasts == sorted(lasts) and lasts[-1] == max(ids)
    # A filter that selects nothing plans no runs.
    few = ExportFilter(project_id=seeded.project.id, state="approved", caption_version="no-such-version")
    assert plan_parts(engine, few, 8) == []
    with pytest.raises(InvalidInput):
        plan_parts(engine, flt, 0)


def test_a_failing_worker_fails_the_export_and_leaves_nothing_named_finished(
    session, engine, blobs, tmp_path
) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    ids = bulk_captioned(session, seeded.project, seeded.annotators[0], 400)
    # An image near the end, so a worker other than the first meets it.
    session.execute(update(Image).where(Image.id == ids[-3]).values(blob_key="../outside.jpg"))
    session.commit()
    out = tmp_path / "export"
    options = ExportOptions(filter=ExportFilter(project_id=seeded.project.id), workers=2, window=50)
    with pytest.raises(InvalidInput, match="bad blob key"):
        export_dataset(engine, blobs, seeded.project, options, out)
    assert sorted(p.name for p in out.iterdir()) == []

    # Fixed, the same export runs through on two workers and matches a single-process one.
    session.execute(update(Image).where(Image.id == ids[-3]).values(blob_key="ok/ok/fine.jpg"))
    session.commit()
    seen: list[int] = []
    totals: list[int] = []
    manifest = export_dataset(
        engine, blobs, seeded.project, options, out, progress=seen.append, on_total=totals.append
    )
    single = export_dataset(
        engine,
        blobs,
        seeded.project,
        ExportOptions(filter=ExportFilter(project_id=seeded.project.id), workers=1),
        tmp_path / "single",
    )
    assert totals == [manifest["counts"]["images"]] and sum(seen) == manifest["counts"]["images"]
    assert [(f["path"], f["sha256"]) for f in manifest["files"]] == [
        (f["path"], f["sha256"]) for f in single["files"]
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f["path"] for f in manifest["files"]] + ["manifest.json"]
    )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_reads_only_the_captions_of_the_window(
    session: Session, engine: Engine, blobs: BlobStore
) -> None:
    """A late window must not scan the captions of every earlier image (it made exports quadratic)."""
    seeded = seed_export(session, blobs, extra_approved=0)
    ids = bulk_captioned(session, seeded.project, seeded.annotators[0], 20_000)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
        query = window_query(ExportFilter(project_id=seeded.project.id), ids[-2000], None, 100)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    read = 0
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if node.get("Relation Name") == "captions" or "captions" in node.get("Index Name", ""):
            loops = node.get("Actual Loops", 1)
            read += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    assert 0 < read <= 300, f"the window read {read} caption rows for 100 images: {json.dumps(plan)[:2000]}"


def test_waiting_for_a_run_no_worker_has_fails_instead_of_hanging(engine: Engine, tmp_path) -> None:
    job = PartJob(
        database_url=engine.url.render_as_string(hide_password=False),
        project_name="none",
        blob_root=str(tmp_path),
        out_dir=str(tmp_path),
        filter=ExportFilter(project_id=1).as_dict(),
        split={"train": 90, "validation": 5, "test": 5},
        formats=["jsonl"],
        window=10,
        public_base_url="",
        runs=[],
    )
    pool = PartBuilders([job])
    try:
        with pytest.raises(PartBuildFailed, match="none reported run 0"):
            pool.wait_for(0, None)
    finally:
        pool.close()


def test_a_part_builder_loads_neither_the_cli_nor_the_web_app_nor_pyarrow() -> None:
    """Each part builder is a fresh interpreter: what its module imports, every builder pays for."""
    unwanted = ["annotate.cli", "annotate.api", "typer", "rich", "fastapi", "uvicorn", "pyarrow", "pandas"]
    unwanted += ["numpy", "PIL", "av", "httpx", "alembic"]
    code = (
        "import json, sys\n"
        "import annotate.services.export.part_builder\n"
        f"print(json.dumps(sorted(m for m in {unwanted!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
