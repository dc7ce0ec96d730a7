"""Image bytes for logged-in users: annotators see the images of their own live or submitted
assignments, leads and admins see every image."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from annotate.api.deps import BlobsDep, CurrentUser, SessionDep
from annotate.errors import Forbidden, NotFound
from annotate.services.assignments import can_view_image
from db.blobstore import BlobStore
from db.models import Image, User

router = APIRouter(prefix="/api/images", tags=["images"])

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
# Blobs are content-addressed, so a URL's bytes never change; private: only this user's browser caches.
CACHE = {"Cache-Control": "private, max-age=86400"}


def _image_for(session: Session, user: User, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"No image {image_id}.", code="image_not_found")
    if not can_view_image(session, user, image_id):
        raise Forbidden("This image is not assigned to you.", code="image_not_assigned")
    return image


def _send(blobs: BlobStore, key: str, media_type: str) -> FileResponse:
    path = blobs.path(key)
    if not path.is_file():
        raise NotFound("The image file is missing from the blob store.", code="blob_missing")
    return FileResponse(path, media_type=media_type, headers=CACHE)


@router.get("/{image_id}/original", response_class=FileResponse)
def image_original(
    image_id: int,
    user: CurrentUser,
    session: SessionDep,
    blobs: BlobsDep,
) -> FileResponse:
    """The image as ingested (EXIF orientation is applied by the browser)."""
    image = _image_for(session, user, image_id)
    return _send(blobs, image.blob_key, MEDIA_TYPES.get(image.format.upper(), "application/octet-stream"))


@router.get("/{image_id}/thumbnail", response_class=FileResponse)
def image_thumbnail(
    image_id: int,
    user: CurrentUser,
    session: SessionDep,
    blobs: BlobsDep,
) -> FileResponse:
    """A JPEG thumbnail (long side 512 px)."""
    image = _image_for(session, user, image_id)
    return _send(blobs, image.thumb_key, "image/jpeg")
