"""Peak memory of one upload's intake, for decompression bombs and a normal take (issue #10, item 1).

    python bench/intake_memory.py

Each case runs in a fresh child process on a fresh SQLite database: the child imports everything,
warms the decoder on a short clip, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`), reads
its idle RSS, runs `accept_recording` (store, bounded decode, measure, transcode, insert) on one
input, and reports VmHWM minus idle RSS. Target: under 64 MB above idle for any input under the
upload cap. A table goes to stdout, JSON to bench/out/intake_memory.json.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OUT = REPO / "bench" / "out"
SPEECH = REPO / "tests" / "fixtures" / "speech"
TARGET_MB = 64.0
CASES = {
    "flac bomb, 1 h stated in STREAMINFO": ("flac_stated", "audio/flac"),
    "flac bomb, 1 h, length unstated": ("flac_unstated", "audio/flac"),
    "wav whose header claims 1 Hz": ("wav_1hz", "audio/wav"),
    "webm/opus bomb, 1 h, no Duration": ("opus_hour", "audio/webm"),
    "normal 90 s webm/opus take": ("take_90s", "audio/webm"),
}


def make_input(kind: str) -> bytes:
    from tests.support.audio_bombs import flac_bomb, lying_wav, opus_bomb

    if kind == "flac_stated":
        return flac_bomb(3600)
    if kind == "flac_unstated":
        return flac_bomb(3600, stated=False)
    if kind == "wav_1hz":
        return lying_wav(rate=1)
    if kind == "opus_hour":
        return opus_bomb(3600)
    return speech_webm(90.0)


def speech_webm(seconds: float) -> bytes:
    """Real speech looped to `seconds`, encoded as a browser would (webm/opus, 48 kHz, 48 kbit/s)."""
    import av
    import numpy as np

    from transcribe.audio import decode_audio

    clip = decode_audio(SPEECH / "boats.wav", 48000)
    samples = np.tile(clip, int(np.ceil(seconds * 48000 / len(clip))))[: int(seconds * 48000)]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        stream.bit_rate = 48000
        pcm = (samples * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(kind: str, content_type: str, workdir: Path) -> dict[str, object]:
    """Runs in the child: set up, measure one intake, return the figures."""
    import os

    os.environ["VOICECAP_DATA_DIR"] = str(workdir)
    from annotate.services.intake import IntakeRejected, accept_recording
    from annotate.services.projects import ProjectSpec, create_project
    from annotate.services.users import add_user
    from db.blobstore import BlobStore
    from db.migrate import upgrade
    from db.models import Image
    from db.session import get_engine, session_factory
    from db.settings import get_settings
    from transcribe.audio import decode_audio

    settings = get_settings()
    engine = get_engine(settings.resolved_database_url)
    upgrade(engine)
    blobs = BlobStore(settings.blob_dir)
    with session_factory(engine)() as session:
        spec = ProjectSpec(name="bench", min_seconds=2, max_seconds=120, per_image=1)
        project = create_project(session, spec)
        user = add_user(session, "ann", "annotator", "bench-password").user
        key, sha = blobs.put_bytes(b"not decoded here", suffix=".jpg")
        image = Image(
            project_id=project.id,
            sha256=sha,
            source="bench://1",
            blob_key=key,
            thumb_key=key,
            width=1,
            height=1,
            format="JPEG",
        )
        session.add(image)
        session.commit()
        data = make_input(kind)
        decode_audio(SPEECH / "boats.wav")  # load codecs, warm the allocator
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        idle_kb = _status_kb("VmRSS")
        started = time.perf_counter()
        try:
            accept_recording(
                session,
                blobs,
                settings,
                project=project,
                image=image,
                user=user,
                client_uuid="77777777-7777-4777-8777-777777777777",
                content_type=content_type,
                chunks=[data[i : i + 65536] for i in range(0, len(data), 65536)],
            )
            session.commit()
            outcome = "accepted"
        except IntakeRejected as exc:
            outcome = exc.code
        seconds = time.perf_counter() - started
        peak_kb = _status_kb("VmHWM")
    return {
        "bytes": len(data),
        "outcome": outcome,
        "idle_mb": idle_kb / 1024,
        "peak_above_idle_mb": (peak_kb - idle_kb) / 1024,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CONTENT_TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps(child(args.child[0], args.child[1], Path(workdir))))
        return
    results = []
    for label, (kind, content_type) in CASES.items():
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, content_type],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        result = {"case": label, **json.loads(done.stdout.strip().splitlines()[-1])}
        results.append(result)
        print(
            f"{label:40} {result['bytes']:>10,} B  {result['outcome']:22} "
            f"+{result['peak_above_idle_mb']:6.1f} MB above idle ({result['idle_mb']:.0f} MB)  "
            f"{result['seconds']:.2f} s"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "intake_memory.json").write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "python": platform.python_version(),
                "target_mb_above_idle": TARGET_MB,
                "results": results,
            },
            indent=2,
        )
    )
    worst = max(r["peak_above_idle_mb"] for r in results)
    print(f"worst: +{worst:.1f} MB above idle (target < {TARGET_MB:g} MB)")


if __name__ == "__main__":
    main()
