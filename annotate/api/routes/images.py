"""Image bytes for logged-in users: annotators see the images of their own live or submitted
assignments, leads and admins see every image."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from annotate.api.deps import BlobsDep, CurrentUser, SessionDep, SettingsDep
from annotate.api.media import send_blob
from annotate.errors import Forbidden, NotFound
from annotate.services.assignments import can_view_image
from db.blobstore import Blobs
from db.models import Image, User
from db.settings import Settings

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


def _send(request: Request, blobs: Blobs, settings: Settings, key: str, media_type: str) -> Response:
    missing = "The image file is missing from the blob store."
    return send_blob(request, blobs, settings, key, media_type, headers=CACHE, missing=missing)


@router.get("/{image_id}/original", response_class=FileResponse)
def image_original(
    image_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    """The image as ingested (EXIF orientation is applied by the browser)."""
    image = _image_for(session, user, image_id)
    return _send(
        request,
        blobs,
        settings,
        image.blob_key,
        MEDIA_TYPES.get(image.format.upper(), "application/octet-stream"),
    )


@router.get("/{image_id}/thumbnail", response_class=FileResponse)
def image_thumbnail(
    image_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    """A JPEG thumbnail (long side 512 px)."""
    image = _image_for(session, user, image_id)
    return _send(request, blobs, settings, image.thumb_key, "image/jpeg")
