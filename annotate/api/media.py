"""Send a blob to a browser from whichever store holds it.

A local blob goes out as a file. With an object store the app streams the object through, or, with
VOICECAP_MEDIA_REDIRECT, answers with a redirect to a short-lived presigned URL so the bytes skip the
app. Either way one byte range (`Range: bytes=a-b`) is answered, so audio players can seek. The
caller has already checked that the user may see the blob.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from annotate.errors import NotFound
from db.blobstore import CHUNK, Blobs, BlobStore
from db.settings import Settings

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def send_blob(
    request: Request,
    blobs: Blobs,
    settings: Settings,
    key: str,
    media_type: str,
    *,
    headers: dict[str, str],
    missing: str,
    code: str = "blob_missing",
) -> Response:
    if isinstance(blobs, BlobStore):
        path = blobs.path(key)
        if not path.is_file():
            raise NotFound(missing, code=code)
        return FileResponse(path, media_type=media_type, headers=headers)  # answers Range itself
    if settings.media_redirect:
        url = blobs.presigned_url(key, settings.presigned_url_seconds)
        if url is not None:
            if not blobs.exists(key):
                raise NotFound(missing, code=code)
            # The link expires; the browser must ask us again rather than cache the redirect.
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    try:
        size = blobs.size(key)
    except FileNotFoundError:
        raise NotFound(missing, code=code) from None
    span = byte_range(request.headers.get("range"), size)
    if span == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    start, end = span or (0, size - 1)
    try:
        handle = blobs.open(key, start, end) if span else blobs.open(key)
    except FileNotFoundError:
        raise NotFound(missing, code=code) from None
    sent = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if span:
        sent["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _chunks(handle), status_code=206 if span else 200, media_type=media_type, headers=sent
    )


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        yield from iter(lambda: handle.read(CHUNK), b"")


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) of a single `bytes=` range; None for no (or an unsupported) Range header, which is
    answered with the whole blob; "unsatisfiable" for a range past the end."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        start, end = max(0, size - int(match[2])), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end
