"""Where documents are stored: a local directory or an S3 prefix, with atomic writes and manifests.

Layout under the root (``SPREPORTS_STORAGE__URL``)::

    <sellerId>/<reportType>/<YYYY-MM-DD>/<reportDocumentId>.<ext>
    <sellerId>/<reportType>/<YYYY-MM-DD>/<reportDocumentId>.manifest.json     written after the document
    _errors/<sellerId>/<reportType>/<YYYY-MM-DD>/...                         documents of FATAL reports
    _index/<sellerId>/<reportDocumentId>.manifest.json                        written last: "this is done"

A document becomes visible only whole: locally through a temporary file in the target directory
(fsync, then an atomic rename), on S3 through a multipart upload completed at the end (aborted on
failure). The index copy of the manifest is the existence check, so a retry on another day still
finds the document. Every path part is validated and escaped; nothing is written outside the root.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from spreports.errors import ServiceUnavailable, SpreportsError, StorageError
from spreports.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ERRORS_DIR = "_errors"
INDEX_DIR = "_index"
UNKNOWN_TYPE = "_unknown"
MAX_PART_LENGTH = 200
# S3 needs >= 5 MiB per part but the last; 8 MiB keeps requests few and the buffered part small.
S3_PART_SIZE = 8 * 2**20
WRITEBACK_STEP = 32 * 2**20
_SAFE = re.compile(r"[A-Za-z0-9_.-]")


def safe_part(value: str, *, what: str) -> str:
    """One path component from an id: refused when empty, too long or holding NUL; otherwise escaped.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``%XX`` (UTF-8 bytes), and so
    does a leading ``.`` or ``_`` (no hidden files, no ``..``, no clash with ``_errors``/``_index``).
    """
    if not value or "\x00" in value:
        raise StorageError(f"refusing an empty {what} or one holding NUL")
    escaped = "".join(ch if _SAFE.fullmatch(ch) else _percent(ch) for ch in value)
    if escaped[0] in "._":
        escaped = _percent(escaped[0]) + escaped[1:]
    if len(escaped) > MAX_PART_LENGTH:
        raise StorageError(f"refusing a {what} longer than {MAX_PART_LENGTH} characters once escaped")
    return escaped


def _percent(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


class DocumentKey(BaseModel):
    """Which document, and where in the layout it belongs."""

    model_config = ConfigDict(frozen=True)

    seller_id: str
    report_document_id: str
    report_type: str | None = None
    day: date
    errors: bool = False

    def directory(self) -> list[str]:
        """The escaped directory parts under the root."""
        parts = [
            safe_part(self.seller_id, what="seller id"),
            safe_part(self.report_type, what="report type") if self.report_type else UNKNOWN_TYPE,
            self.day.isoformat(),
        ]
        return [ERRORS_DIR, *parts] if self.errors else parts

    def name(self, suffix: str) -> str:
        """``<escaped reportDocumentId>.<suffix>``."""
        if not re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)*", suffix):
            raise StorageError("refusing an odd file suffix")
        return f"{safe_part(self.report_document_id, what='report document id')}.{suffix}"


def index_parts(seller_id: str, report_document_id: str) -> list[str]:
    """Where the done-marker (the index copy of the manifest) of a document lives."""
    return [
        INDEX_DIR,
        safe_part(seller_id, what="seller id"),
        f"{safe_part(report_document_id, what='report document id')}.manifest.json",
    ]


class Manifest(BaseModel):
    """What was stored, from where and how: written beside the document, and to the index, last."""

    seller_id: str
    report_document_id: str
    report_id: str | None = None
    report_type: str | None = None
    processing_status: str = "DONE"
    notification_id: str | None = None
    report: dict[str, Any] | None = None
    location: str
    manifest_location: str
    content_type: str
    source_charset: str | None = None
    stored_charset: str | None = None
    transcoded: bool = False
    compression_label: str | None = None
    compression: str
    content_encoding: str | None = None
    gzip_members: int = 0
    bytes_in: int
    bytes_out: int
    sha256: str
    replaced_chars: int = 0
    attempts: int
    timings: dict[str, float] = Field(default_factory=dict)
    stored_at: datetime


class DocumentWriter(Protocol):
    """An open, not yet visible document: write bytes, then commit (visible, whole) or abort (gone)."""

    def write(self, data: bytes) -> None:
        """Append bytes."""

    def commit(self) -> str:
        """Make the document visible and return its location."""

    def abort(self) -> None:
        """Drop everything written; safe to call after a failure or twice."""


class Storage(Protocol):
    """A place documents are stored (see the module docstring for the layout)."""

    def location(self, parts: list[str]) -> str:
        """The user-facing location (path or s3:// URL) of a relative path."""

    def open_document(self, key: DocumentKey, suffix: str) -> DocumentWriter:
        """Start writing a document; nothing is visible until ``commit``."""

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        """The manifest of an already stored document, or None."""

    def write_manifest(self, key: DocumentKey, manifest: Manifest) -> None:
        """Write the manifest beside the document, then the index copy (the done-marker)."""

    def check_writable(self) -> None:
        """Prove the storage accepts writes; raise StorageError with a clear message otherwise."""


def open_storage(settings: Settings, *, s3_client: S3Client | None = None) -> Storage:
    """The storage ``SPREPORTS_STORAGE__URL`` names: ``s3://bucket/prefix`` or a directory."""
    url = settings.storage.url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path.strip("/"), client=s3_client)
    return LocalStorage(Path(parts.path if parts.scheme == "file" else url))


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as stored: indented JSON, UTF-8."""
    return (manifest.model_dump_json(indent=2) + "\n").encode("utf-8")


def _storage_error(exc: OSError, what: str) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"no space left on the device while writing {what}; nothing was stored")
    if exc.errno == errno.EDQUOT:
        return StorageError(f"disk quota exceeded while writing {what}; nothing was stored")
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"cannot write {what}: {reason}; nothing was stored")


class LocalStorage:
    """Documents in a local directory tree; ``write`` is the I/O seam (tests inject failures there)."""

    def __init__(self, root: Path, *, write: Callable[[int, bytes], int] = os.write) -> None:
        self.root = root.absolute()
        self._write = write

    def location(self, parts: list[str]) -> str:
        """The absolute path of a relative path under the root."""
        return str(self._path(parts))

    def _path(self, parts: list[str]) -> Path:
        path = self.root.joinpath(*parts)
        # Escaping makes this impossible; the check stays as a second line of defence.
        if os.path.commonpath([self.root, os.path.normpath(path)]) != str(self.root):
            raise StorageError("refusing a path outside the storage root")
        return path

    def open_document(self, key: DocumentKey, suffix: str) -> LocalWriter:
        """A temporary file in the target directory, renamed into place on commit."""
        return LocalWriter(self._path([*key.directory(), key.name(suffix)]), self._write)

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        """Read the index copy of the manifest, if the document was stored."""
        try:
            data = self._path(index_parts(seller_id, report_document_id)).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the manifest index: {exc.strerror}") from None
        return Manifest.model_validate_json(data)

    def write_manifest(self, key: DocumentKey, manifest: Manifest) -> None:
        """Beside the document, then in the index, each atomically."""
        body = manifest_bytes(manifest)
        for parts in (
            [*key.directory(), key.name("manifest.json")],
            index_parts(key.seller_id, key.report_document_id),
        ):
            writer = LocalWriter(self._path(parts), self._write)
            try:
                writer.write(body)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

    def check_writable(self) -> None:
        """Create the root if needed and write, fsync and remove a probe file."""
        # A probe name of its own: several workers may start at once.
        probe = self.root / f".spreports-probe-{uuid.uuid4().hex}"
        writer = None
        try:
            writer = LocalWriter(probe, self._write)
            writer.write(b"probe")
            writer.commit()
            os.unlink(probe)
        except StorageError:
            if writer is not None:
                writer.abort()
            raise StorageError(f"SPREPORTS_STORAGE__URL: {self.root} is not a writable directory") from None
        except OSError as exc:
            raise StorageError(f"SPREPORTS_STORAGE__URL: {self.root} is not writable ({exc.strerror})") from None


class LocalWriter:
    """One document being written: temporary file, fsync, atomic rename, directory fsync."""

    def __init__(self, path: Path, write: Callable[[int, bytes], int]) -> None:
        self.path = path
        self._write = write
        self._display = path.name
        prefix = f".{path.name[:60]}.{hashlib.sha256(path.name.encode()).hexdigest()[:8]}."
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Leftovers of an attempt killed mid-write (SIGKILL, OOM): the caller holds the document's
            # claim, so no live writer owns them.
            for stale in path.parent.glob(f"{glob.escape(prefix)}*.part"):
                stale.unlink(missing_ok=True)
            self._fd, temp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".part")
        except OSError as exc:
            raise _storage_error(exc, self._display) from None
        self._temp: Path | None = Path(temp)
        self._written = 0
        self._flushed = 0

    def write(self, data: bytes) -> None:
        """Append all of ``data`` (os.write on large buffers; partial writes are continued)."""
        view = memoryview(data)
        try:
            while view:
                written = self._write(self._fd, view)  # type: ignore[arg-type]
                view = view[written:]
                self._written += written
            if self._written - self._flushed >= WRITEBACK_STEP:
                self._start_writeback()
        except OSError as exc:
            self.abort()
            raise _storage_error(exc, self._display) from None

    def _start_writeback(self) -> None:
        # Start writing the pages out now (FADV_DONTNEED starts writeback without waiting, and drops
        # pages already clean), so the fsync at the end waits for the last step only, not the whole
        # document, and a big download does not flood the page cache. Advisory: errors are ignored.
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, 0, self._written, os.POSIX_FADV_DONTNEED)
        self._flushed = self._written

    def commit(self) -> str:
        """fsync, rename over the final name, fsync the directory; return the path."""
        if self._temp is None:
            raise StorageError(f"{self._display} was aborted; nothing to commit")
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.replace(self._temp, self.path)
            self._temp = None
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            self.abort()
            raise _storage_error(exc, self._display) from None
        return str(self.path)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)
            self._temp = None


class S3Storage:
    """Documents under ``s3://bucket/prefix``; the client comes from ``boto3.client("s3")`` by default,
    so ``AWS_ENDPOINT_URL_S3`` and the usual credential chain apply."""

    def __init__(self, bucket: str, prefix: str = "", *, client: S3Client | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

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

    def write_manifest(self, key: DocumentKey, manifest: Manifest) -> None:
        """Beside the document, then in the index."""
        body = manifest_bytes(manifest)
        for parts in (
            [*key.directory(), key.name("manifest.json")],
            index_parts(key.seller_id, key.report_document_id),
        ):
            self.put(self.key(parts), body, content_type="application/json")

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
