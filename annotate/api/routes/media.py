"""Media behind signed links (annotate/services/media_links.py): no session, CORS for Label Studio.

The token is the permission: it names one image or the audio of given recordings and when that stops
being fetchable. Label Studio's editor fetches media cross-origin without cookies, so the configured
Label Studio origin (VOICECAP_LABELSTUDIO_URL) is allowed to read the bytes; downloads by scripts need
no CORS at all. Several recordings in one link are one WAV, played one after another, streamed part by part.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import iterate_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select

from annotate.api.deps import BlobsDep, MediaSignerDep, SessionDep, SettingsDep
from annotate.api.media import send_blob
from annotate.api.routes.images import MEDIA_TYPES
from annotate.errors import InvalidInput, NotFound, Unauthorized
from annotate.services.media_links import MediaLinkInvalid, MediaSigner, origin_of
from db.blobstore import Blobs
from db.models import DEAD_RECORDING_STATES, Image, Recording
from db.settings import Settings

router = APIRouter(prefix="/api/media", tags=["media"])


def _cors(settings: Settings) -> dict[str, str]:
    """Sent on every answer, asked with an Origin or not: a browser may reuse a cached image it loaded
    without CORS for a CORS fetch of the same URL, and that copy must carry the header too."""
    allowed = origin_of(settings.labelstudio_url)
    if not allowed:
        return {}
    return {
        "Access-Control-Allow-Origin": allowed,
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Range",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
        "Vary": "Origin",
    }


def _verify(signer: MediaSigner, token: str) -> tuple[str, tuple[int, ...]]:
    try:
        return signer.verify(token)
    except MediaLinkInvalid as exc:
        raise Unauthorized(str(exc), code="media_link_invalid") from exc


FRAMES_PER_CHUNK = 64 * 1024  # 4 s of 16 kHz audio a chunk: memory stays flat however long the takes


def _wav_header(channels: int, sample_width: int, rate: int, frames: int) -> bytes:
    """A canonical 44-byte PCM WAV header for `frames` frames of this format."""
    block = channels * sample_width
    size = frames * block
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, sample_width * 8)
    return b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", size)


def _joined_wav(blobs: Blobs, keys: list[str]) -> tuple[int, Iterator[bytes]]:
    """The WAVs one after another as one WAV (all are the 16 kHz mono files intake writes): its length,
    and its bytes streamed part by part (each part's header is read first, to size the whole)."""
    params: tuple[int, int, int] | None = None  # channels, sample width, rate
    frames = 0
    for key in keys:
        with blobs.open(key) as handle, wave.open(handle, "rb") as part:
            if params is None:
                params = part.getparams()[:3]
            elif part.getparams()[:3] != params:
                raise InvalidInput("These recordings' WAV files differ in format.")
            frames += part.getnframes()
    assert params is not None
    header = _wav_header(*params, frames)

    def chunks() -> Iterator[bytes]:
        yield header
        for key in keys:
            with blobs.open(key) as handle, wave.open(handle, "rb") as part:
                while data := part.readframes(FRAMES_PER_CHUNK):
                    yield data

    return len(header) + frames * params[0] * params[1], chunks()


@router.options("/{token}/{name}", include_in_schema=False)
def media_preflight(token: str, name: str, request: Request, settings: SettingsDep) -> Response:
    return Response(status_code=204, headers=_cors(settings))


@router.get("/{token}/{name}", response_class=FileResponse)
def media(
    token: str,
    name: str,
    request: Request,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    signer: MediaSignerDep,
) -> Response:
    """An image, or recordings' 16 kHz audio, named by a signed link that has not expired."""
    kind, ids = _verify(signer, token)
    headers = {**_cors(settings), "Cache-Control": "private, max-age=3600"}
    if kind == "image":
        image = session.get(Image, ids[0])
        if image is None:
            raise NotFound("This image is gone.", code="image_not_found")
        media_type = MEDIA_TYPES.get(image.format.upper(), "application/octet-stream")
        return send_blob(
            request,
            blobs,
            settings,
            image.blob_key,
            media_type,
            headers=headers,
            missing="This image is gone.",
            code="image_not_found",
        )
    rows = session.execute(
        select(Recording.id, Recording.wav_key).where(
            Recording.id.in_(ids), Recording.status.not_in(DEAD_RECORDING_STATES)
        )
    ).all()
    keys = dict(rows)
    gone = "A recording of this link is gone."
    if len(keys) != len(set(ids)) or not all(blobs.exists(k) for k in keys.values()):
        raise NotFound(gone, code="recording_not_found")
    if len(ids) == 1:
        return send_blob(
            request,
            blobs,
            settings,
            keys[ids[0]],
            "audio/wav",
            headers=headers,
            missing=gone,
            code="recording_not_found",
        )
    length, chunks = _joined_wav(blobs, [keys[i] for i in ids])
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="audio/wav",
        headers={**headers, "Content-Length": str(length)},
    )
