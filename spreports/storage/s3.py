"""Documents under an S3 prefix: multipart uploads, a few parts at a time, completed at the end (aborted on failure)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from spreports.errors import ServiceUnavailable, SpreportsError, StorageError
from spreports.storage.base import ManifestWriting
from spreports.storage.layout import DocumentKey, Manifest, index_parts
from spreports.storage.local import STALE_PART_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 needs >= 5 MiB per part but the last; 8 MiB keeps requests few and the buffered part small.
S3_PART_SIZE = 8 * 2**20
# Parts uploading at once: a few hide each request's latency; each holds one part buffer in memory.
S3_PARTS_IN_FLIGHT = 4


class S3Storage(ManifestWriting):
    """Documents under ``s3://bucket/prefix``; the client comes from ``boto3.client("s3")`` by default,
    so ``AWS_ENDPOINT_URL_S3`` and the usual credential chain apply."""

    def __init__(
        self, bucket: str, prefix: str = "", *, client: S3Client | None = None, stale_after: float = STALE_PART_SECONDS
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.stale_after = stale_after

    def remove_stale_parts(self, days: Sequence[date] | None = None) -> int:
        """Abort the multipart uploads of writers killed mid-write (under the prefix, whatever ``days`` says).

        Only uploads started more than ``stale_after`` ago: a younger one may be a live writer's.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        cutoff = datetime.now(UTC) - timedelta(seconds=self.stale_after)
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, "the clean-up of unfinished uploads") from None
        return aborted

    def key(self, parts: list[str]) -> str:
        """The object key of a relative path."""
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def location(self, parts: list[str]) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key(parts)}"

    def open_document(self, key: DocumentKey, suffix: str) -> S3Writer:
        """A multipart upload, completed on commit."""
        return S3Writer(self, self.key([*key.directory(), key.name(suffix)]))

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        """Read the index copy of the manifest, if the document was stored."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.key(index_parts(seller_id, report_document_id))
            )
            data = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _s3_error(exc, "the manifest index") from None
        except BotoCoreError as exc:
            raise _s3_error(exc, "the manifest index") from None
        return Manifest.model_validate_json(data)

    def write_small(self, parts: list[str], body: bytes, *, content_type: str) -> None:
        """One small object in one request."""
        self.put(self.key(parts), body, content_type=content_type)

    def put(self, object_key: str, body: bytes, *, content_type: str = "application/octet-stream") -> None:
        """One small object in one request."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=object_key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, object_key.rsplit("/", 1)[-1]) from None

    def check_writable(self) -> None:
        """Put and delete a probe object."""
        from botocore.exceptions import BotoCoreError, ClientError

        probe = self.key([f".spreports-probe-{uuid.uuid4().hex}"])
        self.put(probe, b"probe")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=probe)
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, "the probe object") from None


def _s3_error(exc: Exception, what: str) -> SpreportsError:
    """A botocore failure as ours: S3 unreachable or failing (5xx, SlowDown) is transient, a refusal permanent."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
            return ServiceUnavailable(f"S3 failed on {what} ({code}); nothing was stored")
        return StorageError(f"S3 refused {what} ({code}); nothing was stored")
    return ServiceUnavailable(f"cannot reach S3 for {what} ({type(exc).__name__}); nothing was stored")


class S3Writer:
    """One document being uploaded, up to ``in_flight`` parts at a time; invisible until the upload completes.

    Memory stays bounded: ``write`` blocks while ``in_flight`` parts are uploading, so at most that many
    part buffers plus the next one are held. Parts are completed in their order whatever order
    they finished in; the first failed part aborts the whole upload (no unfinished upload is left).
    """

    def __init__(
        self, storage: S3Storage, object_key: str, part_size: int = S3_PART_SIZE, in_flight: int = S3_PARTS_IN_FLIGHT
    ) -> None:
        self.storage = storage
        self.object_key = object_key
        self.part_size = part_size
        self.in_flight = in_flight
        self._blocks: list[bytes] = []
        self._buffered = 0
        self.kept_existing = False
        self._upload_id: str | None = None
        self._uploads: dict[int, Future[str]] = {}  # part number -> its ETag, once uploaded
        self._slots: threading.Semaphore | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._display = object_key.rsplit("/", 1)[-1]

    @property
    def parts_sent(self) -> int:
        """How many parts were handed to the upload threads so far (uploaded or uploading)."""
        return len(self._uploads)

    def write(self, data: bytes) -> None:
        """Buffer, and send a part as soon as a whole part is buffered (blocks are joined once)."""
        self._blocks.append(data)
        self._buffered += len(data)
        if self._buffered >= self.part_size:
            self._send(self._take())

    def _take(self) -> bytes:
        body = b"".join(self._blocks)
        self._blocks.clear()
        self._buffered = 0
        return body

    def _send(self, body: bytes) -> None:
        """Hand one part to an upload thread, waiting for a free slot first (the memory bound)."""
        if self._upload_id is None:
            self._start()
        slots, pool = self._slots, self._pool
        assert slots is not None and pool is not None and self._upload_id is not None
        self._raise_failure()
        slots.acquire()
        try:
            self._raise_failure()  # a part may have failed while this one waited for its slot
        except BaseException:
            slots.release()
            raise
        number = len(self._uploads) + 1
        future = pool.submit(self._upload_part, self._upload_id, number, body)
        future.add_done_callback(lambda _: slots.release())
        self._uploads[number] = future

    def _start(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.storage.client.create_multipart_upload(Bucket=self.storage.bucket, Key=self.object_key)
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, self._display) from None
        self._upload_id = response["UploadId"]
        self._slots = threading.Semaphore(self.in_flight)
        self._pool = ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="s3-part")

    def _upload_part(self, upload_id: str, number: int, body: bytes) -> str:
        """One part (on an upload thread): its ETag, or our error."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.storage.client.upload_part(
                Bucket=self.storage.bucket, Key=self.object_key, UploadId=upload_id, PartNumber=number, Body=body
            )
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, self._display) from None
        return response["ETag"]

    def _raise_failure(self) -> None:
        """Abort and raise if a part already failed (in part order, so the first failure is the one told)."""
        for future in self._uploads.values():
            if future.done() and not future.cancelled() and (error := future.exception()) is not None:
                self.abort()
                raise error

    def _uploaded_parts(self) -> list[dict[str, Any]]:
        """Wait for every part; their numbers and ETags in order (abort and raise on the first failure)."""
        wait(self._uploads.values())
        self._raise_failure()
        return [{"PartNumber": number, "ETag": self._uploads[number].result()} for number in sorted(self._uploads)]

    def commit(self, sha256: str | None = None) -> str:
        """Send the last part, wait for all and complete the upload (a small document is one put_object).

        An object of a concurrent run under the same key is replaced (``sha256`` is not used): S3's
        conditional writes are not offered by every S3-compatible store.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if self._upload_id is None:
            self.storage.put(self.object_key, self._take())
            return f"s3://{self.storage.bucket}/{self.object_key}"
        if self._blocks:
            self._send(self._take())
        parts = self._uploaded_parts()
        try:
            self.storage.client.complete_multipart_upload(
                Bucket=self.storage.bucket,
                Key=self.object_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise _s3_error(exc, self._display) from None
        self._upload_id = None
        self._stop_pool()
        return f"s3://{self.storage.bucket}/{self.object_key}"

    def abort(self) -> None:
        """Abort the multipart upload (S3 then drops its parts); safe to call twice."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._blocks.clear()
        self._buffered = 0
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        # A part still uploading could land after the abort and be kept: let those finish first.
        for future in self._uploads.values():
            future.cancel()
        wait(self._uploads.values())
        self._stop_pool()
        # Nothing was completed, so nothing is visible even if the abort fails; lifecycle rules reap parts.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.bucket, Key=self.object_key, UploadId=upload_id
            )

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
