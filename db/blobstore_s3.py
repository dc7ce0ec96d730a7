"""The blob store in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2, GCS interop…).

Same guarantees as the local folder: an upload is hashed while it streams and is stored under its
content key only when complete, so a row (committed after `put_stream` returns) never names a partial
object. A stream that fits in one part (8 MiB) is sent with a single PUT under its final key; a longer
one goes as a multipart upload to a temporary key, is copied server-side to its content key and the
temporary is deleted. At most one part is in memory; the size limit is enforced while streaming and
aborts the upload. Copy is a single request, so a blob is at most 5 GB (our limits are far below).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlparse

from db.blobstore import CHUNK, TMP_DIR, BlobEntry, BlobTooLarge, StreamedPuts, check_key, key_for

PART_SIZE = 8 * 1024 * 1024  # S3 parts are at least 5 MiB, except the last


def _missing(exc: Exception) -> bool:
    """A botocore ClientError saying the object is not there (botocore is imported only on first use)."""
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in {
        "404",
        "NoSuchKey",
        "NotFound",
    }


class _BodyReader(io.RawIOBase):
    """A GetObject body as a raw stream, so callers get an ordinary buffered binary file."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3BlobStore(StreamedPuts):
    def __init__(self, url: str, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an S3 URL: {url!r} (expected s3://BUCKET/PREFIX)")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.url = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """Made on first use: an export without media only names blobs, and need not load boto3 (about
        a second of CPU and 25 MB in each of its processes)."""
        with self._lock:  # boto3's default session is not thread-safe
            if self._client is None:
                import boto3
                from botocore.config import Config

                # Endpoint, region and credentials: the AWS_* variables or ~/.aws, as for any AWS tool.
                config = Config(
                    retries={"max_attempts": 5, "mode": "standard"},
                    s3={"addressing_style": "path"},
                    signature_version="s3v4",  # presigned URLs too (botocore would sign those with SigV2)
                )
                self._client = boto3.client("s3", config=config)
            return self._client

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            return True
        except Exception as exc:
            if _missing(exc):
                return False
            raise

    def _get(self, key: str, start: int = 0, end: int | None = None) -> Any:
        extra = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end}"}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key), **extra)["Body"]
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(f"blob {key} is missing from {self.url}") from None
            raise

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(_BodyReader(self._get(key, start, end)), CHUNK))

    def read_bytes(self, key: str) -> bytes:
        body = self._get(key)
        try:
            return cast(bytes, body.read())
        finally:
            body.close()

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(f"blob {key} is missing from {self.url}") from None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def _objects(self, under: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=under):
            yield from page.get("Contents", [])

    def entries(self) -> Iterator[BlobEntry]:
        root = self._root()
        for item in self._objects(root):
            key = item["Key"][len(root) :]
            if key.startswith(f"{TMP_DIR}/") or key.endswith("/"):
                continue
            yield BlobEntry(key, int(item["Size"]), item["LastModified"])

    def keys(self) -> Iterator[str]:
        for entry in self.entries():
            yield entry.key

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        # Decoders (PyAV, Pillow) want a seekable file; a temp copy outside the data dir, gone afterwards.
        with tempfile.NamedTemporaryFile(prefix="voicecap-blob-", suffix=Path(key).suffix) as handle:
            body = self._get(key)
            try:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    handle.write(chunk)
            finally:
                body.close()
            handle.flush()
            yield Path(handle.name)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def presigned_url(self, key: str, seconds: int) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._name(key)}
        return cast(str, self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def put_stream(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> tuple[str, str]:
        """Hash and send while reading; raises BlobTooLarge as soon as more than max_bytes arrive."""
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload: _Multipart | None = None
        try:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(max_bytes)
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    upload = upload or _Multipart(self, f"{self._root()}{TMP_DIR}/{uuid.uuid4().hex}")
                    upload.send(bytes(buffer))
                    buffer.clear()
            sha = digest.hexdigest()
            key = key_for(sha, suffix)
            stored = self.exists(key)
            if upload is None:
                if not stored:
                    self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=bytes(buffer))
            else:
                if buffer:
                    upload.send(bytes(buffer))
                upload.finish_as(self._name(key), copy=not stored)
            if stored:
                self._touch(key)
            return key, sha
        except BaseException:
            if upload is not None:
                upload.abandon()
            raise

    def _touch(self, key: str) -> None:
        """Renew an existing object's LastModified (a copy onto itself): the same bytes are in use again,
        so `blobs check --sweep` must not take it for an old orphan."""
        name = self._name(key)
        self.client.copy_object(
            Bucket=self.bucket,
            Key=name,
            CopySource={"Bucket": self.bucket, "Key": name},
            MetadataDirective="REPLACE",
        )

    def sweep_temporaries(self, older_than: datetime) -> int:
        removed = 0
        tmp = f"{self._root()}{TMP_DIR}/"
        for item in self._objects(tmp):
            if item["LastModified"] < older_than:
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                removed += 1
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=tmp)
        for upload in listing.get("Uploads", []):
            if upload["Initiated"] < older_than:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        return removed


class _Multipart:
    """One multipart upload to a temporary key, completed and copied to the content key at the end."""

    def __init__(self, store: S3BlobStore, name: str) -> None:
        self.store = store
        self.name = name
        self.parts: list[dict[str, Any]] = []
        created = store.client.create_multipart_upload(Bucket=store.bucket, Key=name)
        self.upload_id: str = created["UploadId"]
        self.completed = False

    def send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        sent = self.store.client.upload_part(
            Bucket=self.store.bucket, Key=self.name, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def finish_as(self, final: str, *, copy: bool) -> None:
        client, bucket = self.store.client, self.store.bucket
        client.complete_multipart_upload(
            Bucket=bucket, Key=self.name, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )
        self.completed = True
        if copy:
            client.copy_object(Bucket=bucket, Key=final, CopySource={"Bucket": bucket, "Key": self.name})
        client.delete_object(Bucket=bucket, Key=self.name)

    def abandon(self) -> None:
        """Best effort: what is left is removed by `voicecap blobs check --sweep`."""
        try:
            if self.completed:
                self.store.client.delete_object(Bucket=self.store.bucket, Key=self.name)
            else:
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.name, UploadId=self.upload_id
                )
        except Exception:
            pass
