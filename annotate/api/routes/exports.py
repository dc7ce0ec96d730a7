"""Dataset downloads for leads: JSONL streamed row by row; Parquet or a zip of the full export."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from annotate.api.content_disposition import attachment
from annotate.api.deps import BlobsDep, EngineDep, LeadUser, SessionDep, SettingsDep
from annotate.errors import InvalidInput
from annotate.security import media_links
from annotate.services.export import (
    ExportFilter,
    ExportOptions,
    RowBuilder,
    SplitSpec,
    as_utc,
    export_dataset,
    stream_jsonl,
    write_parquet,
    zip_directory,
)
from annotate.services.projects import get_project

router = APIRouter(prefix="/api", tags=["exports"])

DOWNLOAD_FORMATS = ("jsonl", "parquet", "zip")


@router.get(
    "/projects/{project_id}/export",
    summary="Download a project's dataset",
    response_model=None,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {},
                "application/zip": {},
                "application/vnd.apache.parquet": {},
            }
        }
    },
)
def download_export(
    project_id: int,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    engine: EngineDep,
    _: LeadUser,
    format: str = Query(
        "jsonl", description="jsonl (streamed), parquet, or zip (JSONL + Parquet + manifest)."
    ),
    state: Literal["approved", "captioned", "all"] = Query("approved"),
    since: datetime | None = Query(None, description="Captions created at or after (ISO; UTC if no zone)."),
    until: datetime | None = Query(None, description="Captions created before (ISO; UTC if no zone)."),
    caption_version: str | None = Query(None, description="Only captions of this prompt_version."),
    split: str = Query("90,5,5", description="train,validation,test percentages, by image hash."),
) -> Response:
    if format not in DOWNLOAD_FORMATS:
        raise InvalidInput(f"Unknown format {format!r}; use {', '.join(DOWNLOAD_FORMATS)}.")
    project = get_project(session, project_id)
    flt = ExportFilter(
        project_id=project.id,
        state=state,
        since=as_utc(since),
        until=as_utc(until),
        caption_version=caption_version,
    )
    spec = SplitSpec.parse(split)
    session.close()  # the rows are read in short transactions of their own
    links = media_links(settings)  # signed image_url links (no session needed) under a public base URL
    # Only the JSONL stream takes the stored pointing JSON unparsed; Parquet reads the rows' values.
    builder = RowBuilder(
        project.name, blobs, spec, settings.public_base_url, links=links, raw_json=format == "jsonl"
    )
    stem = f"{_safe(project.name)}-{state}"
    if format == "jsonl":
        return StreamingResponse(
            stream_jsonl(engine, builder, flt),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": attachment(f"{stem}.jsonl")},
        )
    # Parquet and zip are built in a scratch directory beside the data, sent, then removed.
    scratch = Path(tempfile.mkdtemp(prefix="export-", dir=_scratch_root(settings.data_dir)))
    cleanup = BackgroundTask(shutil.rmtree, scratch, ignore_errors=True)
    try:
        if format == "parquet":
            target = scratch / f"{stem}.parquet"
            write_parquet(engine, builder, flt, target)
            media_type = "application/vnd.apache.parquet"
        else:
            options = ExportOptions(
                filter=flt,
                split=spec,
                formats=("jsonl", "parquet"),
                public_base_url=settings.public_base_url,
                links=links,
            )
            export_dataset(engine, blobs, project, options, scratch / stem)
            target = scratch / f"{stem}.zip"
            zip_directory(scratch / stem, target)
            media_type = "application/zip"
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(target, media_type=media_type, filename=target.name, background=cleanup)


def _scratch_root(data_dir: Path) -> Path:
    root = Path(data_dir) / "exports-tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:80] or "project"
