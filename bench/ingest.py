"""Benchmark: ingest 5,000 generated JPEGs (mixed sizes up to 4000x3000) with thumbnails, on 2 cores.

Targets (issue 2): at least 100 images/s, peak memory under 300 MB (all processes together).

    python bench/ingest.py                       # SQLite in a scratch directory
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The images are generated once into --work/images and reused. Generating 5,000 photo-like JPEGs from
scratch takes longer than ingesting them, so 48 distinct pictures (6 per size) are encoded and each
file is made unique by a JPEG comment: every file has its own sha256 and is fully decoded, and the
decoder's work (entropy decoding dominates) is the same as for distinct photos of that size and
compressed size. Files are ~1 MB on average, like camera JPEGs; about 1 in 8 carries an EXIF rotation.

Memory is sampled every 50 ms as the resident set size of this process (plus any child processes;
the ingest itself uses threads). CPU time is user + system of the whole run, so images per CPU-second
can be compared on a busy machine, where wall-clock throughput depends on the other load.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from annotate.services.ingest import IngestSummary, ingest, iter_folder  # noqa: E402
from db.blobstore import BlobStore  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Project  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.settings import Settings  # noqa: E402

SIZES = [
    (640, 480),
    (1024, 768),
    (1280, 960),
    (1600, 1200),
    (1920, 1080),
    (2048, 1536),
    (3000, 2000),
    (4000, 3000),
]
VARIANTS_PER_SIZE = 6


def photo_like(width: int, height: int, rng: random.Random) -> Image.Image:
    """Smooth colour regions plus fine grain: compresses like a photograph (about 3-4 MB at 12 MP)."""
    sw, sh = max(2, width // 16), max(2, height // 16)
    coarse = Image.frombytes("RGB", (sw, sh), rng.randbytes(sw * sh * 3))
    base = coarse.resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(base, grain, 0.25)


def with_comment(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment after SOI: a new sha256, the same pixels."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def generate(folder: Path, count: int) -> None:
    marker = folder / f".complete-{count}"
    if marker.exists():
        print(f"Reusing {count} images in {folder}")
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(2)
    templates: list[tuple[str, bytes]] = []
    started = time.monotonic()
    for width, height in SIZES:
        for variant in range(VARIANTS_PER_SIZE):
            image = photo_like(width, height, rng)
            out = io.BytesIO()
            if variant == 0:  # a portrait phone photo: stored sideways with EXIF orientation 6
                exif = Image.Exif()
                exif[0x0112] = 6
                image.save(out, "JPEG", quality=88, exif=exif.tobytes())
            else:
                image.save(out, "JPEG", quality=88)
            templates.append((f"{width}x{height}", out.getvalue()))
    print(f"Encoded {len(templates)} distinct pictures in {time.monotonic() - started:.0f} s")
    for index in range(count):
        size, jpeg = templates[rng.randrange(len(templates))]
        sub = folder / f"{index // 1000:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"img{index:05d}_{size}.jpg").write_bytes(with_comment(jpeg, f"voicecap bench {index}"))
    marker.touch()
    total = sum(p.stat().st_size for p in folder.rglob("*.jpg"))
    print(f"Wrote {count} files, {total / 1e9:.2f} GB, {total / count / 1e6:.2f} MB each on average")


class MemorySampler:
    """Peak RSS of this process and of this process plus its children, sampled in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_total = 0
        self.peak_main = 0
        self.peak_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                main = me.memory_info().rss
                children = [c.memory_info().rss for c in me.children(recursive=True)]
            except psutil.Error:
                continue
            self.peak_main = max(self.peak_main, main)
            self.peak_workers = max(self.peak_workers, max(children, default=0))
            self.peak_total = max(self.peak_total, main + sum(children))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_ingest(engine, blobs, settings, project_id, folder, count, workers):
    items = list(iter_folder(folder))
    assert len(items) == count, f"expected {count} files, found {len(items)}"
    with MemorySampler() as memory:
        cpu_before, started = cpu_seconds(), time.perf_counter()
        summary: IngestSummary = ingest(
            engine, blobs, settings, project_id, items, total=count, workers=workers
        )
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    return summary, seconds, cpu, memory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=0, help="Ingest threads; 0 = cores + 1.")
    parser.add_argument("--cores", type=int, default=2, help="Pin the run to this many CPU cores.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/voicecap-bench-ingest"))
    parser.add_argument("--database-url", default="", help="Default: SQLite in the scratch directory.")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: args.cores])  # worker processes inherit it
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    images = args.work / "images"
    generate(images, args.count)
    if args.workers <= 0:
        args.workers = cores + 1
    load_before = os.getloadavg()[0]

    data_dir = args.work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir=data_dir, database_url=args.database_url)
    engine = make_engine(settings.resolved_database_url)
    if not args.database_url.startswith("sqlite") and args.database_url:
        from sqlalchemy import text

        with engine.begin() as conn:  # a reused PostgreSQL database: start empty
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    blobs = BlobStore(settings.blob_dir)
    with engine.begin() as conn:
        project_id = conn.execute(
            Project.__table__.insert().values(name="bench", questions=[]).returning(Project.__table__.c.id)
        ).scalar_one()

    print(
        f"Ingesting {args.count} images with {args.workers} workers on {cores} cores ({engine.dialect.name})"
    )
    first, seconds, cpu, memory = timed_ingest(
        engine, blobs, settings, project_id, images, args.count, args.workers
    )
    assert first.added == args.count and not first.rejected, first.to_json()
    again, again_seconds, again_cpu, again_memory = timed_ingest(
        engine, blobs, settings, project_id, images, args.count, args.workers
    )
    assert again.duplicate == args.count, again.to_json()

    mb = 1024 * 1024
    sizes = [p.stat().st_size for p in images.rglob("*.jpg")]
    print()
    print(
        f"| run | images | wall s | images/s (wall) | CPU s | CPU ms/image "
        f"| images/s if {cores} cores were ours | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, count, secs, cpu_s, mem in (
        ("first ingest (decode, thumbnail, store)", first.added, seconds, cpu, memory),
        ("re-run (all duplicates)", again.duplicate, again_seconds, again_cpu, again_memory),
    ):
        print(
            f"| {label} | {count} | {secs:.1f} | {count / secs:.0f} | {cpu_s:.1f} "
            f"| {cpu_s / count * 1000:.1f} | {cores * count / cpu_s:.0f} | {mem.peak_total / mb:.0f} MB |"
        )
    print()
    print(
        f"Files: {len(sizes)}, median {statistics.median(sizes) / 1e6:.2f} MB, "
        f"total {sum(sizes) / 1e9:.2f} GB; database {engine.dialect.name}; cores {cores}; "
        f"workers {args.workers}; CPU {platform_cpu()}; load average before the run {load_before:.1f}"
    )
    engine.dispose()


def platform_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
