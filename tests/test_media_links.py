"""Signed media links: what a token grants, for how long, and the media route over real HTTP."""

from __future__ import annotations

import io
import wave

import httpx
import pytest

from annotate.security import SessionSigner
from annotate.services.media_links import MediaLinkInvalid, MediaLinks, MediaSigner, origin_of
from db.models import RecordingStatus
from tests.support import factories
from tests.test_export import SPEECH, add_image

KEY = "test-secret-key"  # the `settings` fixture's VOICECAP_SECRET_KEY


def test_a_token_grants_its_kind_and_ids_until_it_expires() -> None:
    signer = MediaSigner(KEY)
    token = signer.token("audio", (3, 4), expires_at=1_000)
    assert signer.verify(token, now=999) == ("audio", (3, 4))
    with pytest.raises(MediaLinkInvalid, match="expired"):
        signer.verify(token, now=1_000)
    with pytest.raises(MediaLinkInvalid, match="not valid"):
        MediaSigner("another key").verify(token, now=0)
    # A session cookie signed with the same key is not a media token.
    session_token = SessionSigner(KEY, 3600).dumps("a-session-token")
    with pytest.raises(MediaLinkInvalid):
        signer.verify(session_token, now=0)
    assert origin_of("http://127.0.0.1:8080/projects/") == "http://127.0.0.1:8080" and origin_of("nope") == ""


def test_the_media_route_serves_joined_audio_with_cors_and_no_session(
    session, blobs, server, settings
) -> None:
    project = factories.add_project(session, "Harbour")
    people = [factories.add_user(session, n, "annotator", "correct-horse") for n in ("annika", "bert")]
    image = add_image(session, blobs, project, 1)
    takes = [
        factories.add_recording(
            session, image, p, blobs=blobs, audio=SPEECH / "boats.wav", status=RecordingStatus.captioned
        )
        for p in people
    ]
    session.commit()
    links = MediaLinks.lasting(server, KEY, days=1)
    with wave.open(str(SPEECH / "boats.wav")) as one:
        frames = one.getnframes()
    joined = httpx.get(links.audio(tuple(t.id for t in takes)), timeout=30)
    assert joined.status_code == 200 and joined.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(joined.content)) as both:
        assert both.getnframes() == 2 * frames and both.getframerate() == 16000
        pcm = both.readframes(2 * frames)
    parts = []
    for take in takes:
        with blobs.open(take.wav_key) as handle, wave.open(handle) as part:
            parts.append(part.readframes(part.getnframes()))
    assert pcm == b"".join(parts)  # each take whole, in the link's order
    assert int(joined.headers["content-length"]) == len(joined.content) == 44 + len(pcm)
    # CORS for Label Studio's origin, on the answer and on a preflight.
    origin = origin_of(settings.labelstudio_url)
    assert joined.headers["access-control-allow-origin"] == origin
    preflight = httpx.options(links.image(image.id), headers={"Origin": origin}, timeout=30)
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == origin
    # A link to a recording that is gone answers 404; the image link still works.
    gone = httpx.get(links.audio((999_999,)), timeout=30)
    assert gone.status_code == 404 and gone.json()["code"] == "recording_not_found"
    assert httpx.get(links.image(image.id), timeout=30).content == blobs.read_bytes(image.blob_key)
