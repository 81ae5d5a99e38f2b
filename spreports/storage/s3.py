"""Documents under an S3 prefix: multipart uploads completed at the end (aborted on failure)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
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

    def remove_stale_parts(self, days: Sequence[date]) -> int:
        """Abort the multipart uploads of writers killed mid-write (under the prefix, whatever the day).

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
    """One document being uploaded part by part; invisible until the multipart upload completes."""

    def __init__(self, storage: S3Storage, object_key: str, part_size: int = S3_PART_SIZE) -> None:
        self.storage = storage
        self.object_key = object_key
        self.part_size = part_size
        self._blocks: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._display = object_key.rsplit("/", 1)[-1]

    def write(self, data: bytes) -> None:
        """Buffer, and upload a part as soon as a whole part is buffered (blocks are joined once)."""
        self._blocks.append(data)
        self._buffered += len(data)
        if self._buffered >= self.part_size:
            self._upload_part(self._take())

    def _take(self) -> bytes:
        body = b"".join(self._blocks)
        self._blocks.clear()
        self._buffered = 0
        return body

    def _upload_part(self, body: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client, bucket = self.storage.client, self.storage.bucket
        try:
            if self._upload_id is None:
                self._upload_id = client.create_multipart_upload(Bucket=bucket, Key=self.object_key)["UploadId"]
            number = len(self._parts) + 1
            response = client.upload_part(
                Bucket=bucket, Key=self.object_key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
            self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise _s3_error(exc, self._display) from None

    def commit(self) -> str:
        """Upload the last part and complete the upload (a small document is one put_object)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._upload_id is None:
            self.storage.put(self.object_key, self._take())
            return f"s3://{self.storage.bucket}/{self.object_key}"
        if self._blocks:
            self._upload_part(self._take())
        try:
            self.storage.client.complete_multipart_upload(
                Bucket=self.storage.bucket,
                Key=self.object_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise _s3_error(exc, self._display) from None
        self._upload_id = None
        return f"s3://{self.storage.bucket}/{self.object_key}"

    def abort(self) -> None:
        """Abort the multipart upload (S3 then drops its parts)."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._blocks.clear()
        self._buffered = 0
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        # Nothing was completed, so nothing is visible even if the abort fails; lifecycle rules reap parts.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.bucket, Key=self.object_key, UploadId=upload_id
            )
