"""Send a blob to a browser from whichever store holds it.

A local blob goes out as a file (Range requests answered, so players can seek). With an object store
the app streams the object through, or, with VOICECAP_MEDIA_REDIRECT, answers with a redirect to a
short-lived presigned URL so the bytes skip the app. Either way the caller has already checked that the
user may see the blob.
"""

from __future__ import annotations

from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from annotate.errors import NotFound
from db.blobstore import CHUNK, Blobs, BlobStore
from db.settings import Settings


def send_blob(
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
        return FileResponse(path, media_type=media_type, headers=headers)
    if settings.media_redirect:
        url = blobs.presigned_url(key, settings.presigned_url_seconds)
        if url is not None:
            if not blobs.exists(key):
                raise NotFound(missing, code=code)
            # The link expires; the browser must ask us again rather than cache the redirect.
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    try:
        size = blobs.size(key)
        handle = blobs.open(key)
    except FileNotFoundError:
        raise NotFound(missing, code=code) from None

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    sent = {**headers, "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type=media_type, headers=sent)
