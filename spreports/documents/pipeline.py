"""The retrieval pipeline: locate -> GET -> gunzip -> (transcode) -> storage -> manifest.

``locate`` (getReportDocument) is called right before *each* attempt, so every attempt uses a fresh
pre-signed URL (they live five minutes). Transient failures of the download itself (an expired URL,
a cut connection, a truncated gzip stream, a 5xx) are retried here a few times with a short backoff;
anything left over is raised for the caller (the Celery task) to retry later. Nothing partial is
ever visible in the storage, and the manifest is written only after the document.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import requests
from pydantic import BaseModel, Field, SecretStr

from spreports.documents.decode import INFLATE_BACKEND, ContentType, Gunzip, Transcoder
from spreports.documents.fetch import check_allowed, cut_off, host_of, install_log_filter, open_download, read_raw
from spreports.documents.pump import InlinePump, Pump
from spreports.errors import DocumentRejected, DocumentUrlExpired, IncompleteDownload, ServiceUnavailable
from spreports.reports.fatal_ledger import CAPTURE_BYTES, error_reason
from spreports.settings import DEFAULT_MAX_DECOMPRESSED_BYTES, Settings
from spreports.storage import DocumentKey, DocumentWriter, Manifest, Storage
from spreports.storage.layout import stored_day
from spreports.task_arguments import DocumentRequest

log = logging.getLogger(__name__)

CHUNK_SIZE = 2**20
_RETRIED_IN_PROCESS = (DocumentUrlExpired, IncompleteDownload, ServiceUnavailable)


class LocatedDocument(Protocol):
    """What getReportDocument returns (``spreports.spapi.ReportDocument`` fits)."""

    @property
    def report_document_id(self) -> str: ...

    @property
    def url(self) -> SecretStr: ...

    @property
    def compression_algorithm(self) -> str | None: ...


class RetrievalOptions(BaseModel):
    """How to retrieve (from ``settings.documents`` and ``settings.spapi`` timeouts)."""

    allowed_hosts: list[str]
    transcode: bool = True
    strict_decoding: bool = False
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    chunk_size: int = CHUNK_SIZE
    max_attempts: int = Field(default=3, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RetrievalOptions:
        """Options as configured."""
        docs = settings.documents
        values: dict[str, Any] = {
            "allowed_hosts": docs.allowed_hosts,
            "transcode": docs.transcode,
            "strict_decoding": docs.strict_decoding,
            "max_decompressed_bytes": docs.max_decompressed_bytes,
            "connect_timeout": settings.spapi.connect_timeout,
            "read_timeout": settings.spapi.read_timeout,
        }
        return cls(**{**values, **overrides})


class RetrievalResult(BaseModel):
    """The manifest of the stored document, and whether it was stored by an earlier run."""

    manifest: Manifest
    already_stored: bool = False

    def summary(self) -> dict[str, Any]:
        """The small JSON summary a task returns (never a URL)."""
        m = self.manifest
        return {
            "seller_id": m.seller_id,
            "report_document_id": m.report_document_id,
            "location": m.location,
            "manifest": m.manifest_location,
            "bytes_in": m.bytes_in,
            "bytes_out": m.bytes_out,
            "sha256": m.sha256,
            "replaced_chars": m.replaced_chars,
            "seconds": m.timings.get("total_seconds"),
            "attempts": m.attempts,
            "already_stored": self.already_stored,
        }


@dataclass(frozen=True)
class TransferProgress:
    """How far one download attempt is: what a :data:`Progress` hook is given."""

    bytes_in: int
    """Bytes received from the document host so far (compressed, as sent)."""
    bytes_out: int
    """Bytes written to the storage so far (decompressed, transcoded)."""
    expected_bytes_in: int | None
    """The answer's Content-Length, when the host sent one."""
    attempt: int
    """The attempt (1-based); a new attempt starts again from zero bytes."""


# Called on the retrieving thread (the caller of ``retrieve_document``) after each block, so a hook may
# use that thread's state (a Celery task's request); a hook that publishes anything throttles itself.
Progress = Callable[[TransferProgress], None]


def retrieve_document(
    request: DocumentRequest,
    *,
    locate: Callable[[], LocatedDocument],
    report: Mapping[str, Any] | None = None,
    storage: Storage,
    options: RetrievalOptions,
    session: requests.Session | None = None,
    progress: Progress | None = None,
    skip_existing: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    supersedes: str | None = None,
) -> RetrievalResult:
    """Retrieve one document into ``storage`` and write its manifest; see the module docstring.

    ``report`` is the report's metadata (getReport's answer), kept in the manifest when known.
    ``supersedes`` names the earlier document this one restates: the manifest says so, and the new
    version is stored in the earlier one's folder, beside it.
    """
    # urllib3 logs request lines, signatures included, at DEBUG: guarded before any download (idempotent).
    install_log_filter()
    if skip_existing:
        existing = storage.find(request.seller_id, request.report_document_id)
        if existing is not None:
            return RetrievalResult(manifest=existing, already_stored=True)
    run = _Retrieval(request, report, storage, options, session or requests.Session(), progress, now)
    if supersedes is not None:
        run.supersede(supersedes)
    for attempt in range(1, options.max_attempts + 1):
        located = run.locate(locate)
        try:
            return RetrievalResult(manifest=run.attempt(located, attempt))
        except _StoredMeanwhile as stored:
            log.warning(
                "document %s of seller %s was stored by another worker while this one downloaded it; kept theirs",
                request.report_document_id, request.seller_id,
            )  # fmt: skip
            return RetrievalResult(manifest=stored.manifest, already_stored=True)
        except _RETRIED_IN_PROCESS as exc:
            if attempt == options.max_attempts:
                raise
            log.warning(
                "document %s of seller %s: attempt %d failed (%s); retrying with a fresh URL",
                request.report_document_id, request.seller_id, attempt, exc,
            )  # fmt: skip
            sleep(min(0.5 * 2**attempt, 8.0))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _day_of(manifest: Manifest) -> date | None:
    """The day folder a stored manifest is in (``.../<YYYY-MM-DD>/<id>.manifest.json``, a path or a URL)."""
    return stored_day(manifest)


class _StoredMeanwhile(Exception):
    """Another run stored the document while this one downloaded it (its claim lapsed meanwhile)."""

    def __init__(self, manifest: Manifest) -> None:
        super().__init__("stored meanwhile")
        self.manifest = manifest


@dataclass
class _Download:
    """What one successful attempt produced."""

    location: str
    content_type: ContentType
    content_encoding: str | None
    gunzip: Gunzip
    transcoder: Transcoder | None
    bytes_in: int
    bytes_out: int
    sha256: str
    error_reason: str | None = None
    kept_existing: bool = False
    """Another run had committed the same bytes under the final name first; theirs were kept."""


class _Retrieval:
    """One retrieval: its attempts share the request, the storage, the options and the timings."""

    def __init__(
        self,
        request: DocumentRequest,
        report: Mapping[str, Any] | None,
        storage: Storage,
        options: RetrievalOptions,
        session: requests.Session,
        progress: Progress | None,
        now: Callable[[], datetime],
    ) -> None:
        self.request = request
        self.report = dict(report) if report is not None else None
        self.storage = storage
        self.options = options
        self.session = session
        self.progress = progress
        self.now = now
        self.started = time.monotonic()
        self.timings = {"locate_seconds": 0.0}
        self.supersedes: str | None = None
        self.day: date | None = None

    def supersede(self, document_id: str) -> None:
        """This document restates ``document_id``: named in the manifest, stored in that one's folder."""
        self.supersedes = document_id
        earlier = self.storage.find(self.request.seller_id, document_id)
        self.day = None if earlier is None else _day_of(earlier)

    def locate(self, locate: Callable[[], LocatedDocument]) -> LocatedDocument:
        """Call getReportDocument (timed) and check its answer is the document asked for."""
        before = time.monotonic()
        located = locate()
        self.timings["locate_seconds"] += time.monotonic() - before
        check_document_id(located, self.request)
        return located

    def attempt(self, located: LocatedDocument, attempt: int) -> Manifest:
        """Download, store and describe the document; the manifest is written last."""
        url = check_allowed(located.url.get_secret_value(), self.options.allowed_hosts)
        started = time.monotonic()
        key = DocumentKey(
            seller_id=self.request.seller_id,
            report_document_id=self.request.report_document_id,
            report_type=self.request.report_type,
            day=self.day or self.now().date(),
            errors=self.request.processing_status == "FATAL",
        )
        download = self._download(url, key, attempt)
        self.timings["download_seconds"] = time.monotonic() - started
        self.timings["total_seconds"] = time.monotonic() - self.started
        _log_stored(self.request, located, download, url)
        manifest = self._manifest(key, located, download, attempt)
        self.storage.write_manifest(key, manifest)
        return manifest

    def _download(self, url: str, key: DocumentKey, attempt: int) -> _Download:
        options = self.options
        with open_download(
            self.session, url, connect_timeout=options.connect_timeout, read_timeout=options.read_timeout
        ) as response:
            content_type = ContentType(response.headers.get("Content-Type"))
            codec = content_type.codec if content_type.is_text else None
            transcoder = Transcoder(codec, strict=options.strict_decoding) if codec and options.transcode else None
            gunzip = Gunzip(options.max_decompressed_bytes)
            writer = self.storage.open_document(key, content_type.extension())
            if key.errors:
                writer = _Capture(writer)  # a FATAL report's error document: its reason goes into the manifest
            try:
                report = _reporter(self.progress, attempt, _content_length(response))
                bytes_in, sha256, bytes_out = _stream(response, writer, gunzip, transcoder, options, report)
                # A worker cut off from Redis may have lost its claim while it downloaded, and another
                # worker may have stored the document meanwhile: the first copy stays, this one goes.
                existing = self.storage.find(self.request.seller_id, self.request.report_document_id)
                if existing is not None:
                    raise _StoredMeanwhile(existing)
                location = writer.commit(sha256)
            except BaseException:
                writer.abort()
                raise
            encoding = response.headers.get("Content-Encoding")
        reason = error_reason(writer.captured) if isinstance(writer, _Capture) else None
        return _Download(location, content_type, encoding, gunzip, transcoder, bytes_in, bytes_out, sha256, reason,
                         kept_existing=writer.kept_existing)  # fmt: skip

    def _manifest(self, key: DocumentKey, located: LocatedDocument, download: _Download, attempt: int) -> Manifest:
        request, content_type, transcoder = self.request, download.content_type, download.transcoder
        return Manifest(
            seller_id=request.seller_id,
            report_document_id=request.report_document_id,
            report_id=request.report_id,
            report_type=request.report_type,
            processing_status=request.processing_status,
            notification_id=request.notification_id,
            report=self.report,
            location=download.location,
            manifest_location=self.storage.location([*key.directory(), key.name("manifest.json")]),
            content_type=content_type.media_type,
            source_charset=content_type.charset_label,
            stored_charset="utf-8" if transcoder else content_type.charset_label,
            transcoded=transcoder is not None,
            compression_label=located.compression_algorithm,
            compression=download.gunzip.detected or "none",
            content_encoding=download.content_encoding,
            gzip_members=download.gunzip.members,
            bytes_in=download.bytes_in,
            bytes_out=download.bytes_out,
            sha256=download.sha256,
            replaced_chars=transcoder.replaced if transcoder else 0,
            attempts=attempt,
            timings={name: round(seconds, 3) for name, seconds in self.timings.items()},
            stored_at=self.now(),
            error_reason=download.error_reason,
            supersedes=self.supersedes,
        )


class _Capture:
    """A document writer that keeps the first bytes written (an error document's reason is in them)."""

    def __init__(self, writer: DocumentWriter) -> None:
        self._writer = writer
        self.captured = b""

    def write(self, data: bytes) -> None:
        if len(self.captured) < CAPTURE_BYTES:
            self.captured += data[: CAPTURE_BYTES - len(self.captured)]
        self._writer.write(data)

    @property
    def kept_existing(self) -> bool:
        return self._writer.kept_existing

    def commit(self, sha256: str | None = None) -> str:
        return self._writer.commit(sha256)

    def abort(self) -> None:
        self._writer.abort()


def _stream(
    response: requests.Response,
    writer: DocumentWriter,
    gunzip: Gunzip,
    transcoder: Transcoder | None,
    options: RetrievalOptions,
    report: Callable[[int, int], None] | None,
) -> tuple[int, str, int]:
    # Reading and inflating run on the reader thread (both release the GIL), transcoding on this one
    # (codecs hold the GIL), hashing and writing on the writer thread.
    received = [0]
    source = _inflated(read_raw(response, options.chunk_size), gunzip, received)
    # A body of one read needs no threads (see InlinePump); a larger one, or one of unknown length, gets them.
    length = _content_length(response)
    small = length is not None and length <= options.chunk_size
    pump: Pump | InlinePump = (InlinePump if small else Pump)(source, writer.write)
    try:
        if transcoder is None:
            for block in pump.chunks():
                pump.write_here(block)
                if report is not None:
                    report(received[0], pump.bytes_out)
        else:
            for block in pump.chunks():
                pump.emit(transcoder.feed(block))
                if report is not None:
                    report(received[0], pump.bytes_out)
            pump.emit(transcoder.feed(b"", final=True))
        pump.finish()
    except BaseException:
        cut_off(response)  # the reader may be blocked in a read: end it now, not at the read timeout
        raise
    finally:
        pump.close()
    return received[0], pump.sha256.hexdigest(), pump.bytes_out


def _inflated(chunks: Iterator[bytes], gunzip: Gunzip, received: list[int]) -> Iterator[bytes]:
    """The decompressed body, block by block (runs on the reader thread)."""
    blocks: list[bytes] = []
    for chunk in chunks:
        received[0] += len(chunk)
        gunzip.feed(chunk, blocks.append)
        yield from blocks
        blocks.clear()
    gunzip.finish(blocks.append)
    yield from blocks


def _reporter(progress: Progress | None, attempt: int, expected: int | None) -> Callable[[int, int], None] | None:
    """``progress`` bound to one attempt: called with (bytes in, bytes out) on the retrieving thread."""
    if progress is None:
        return None

    def report(bytes_in: int, bytes_out: int) -> None:
        progress(TransferProgress(bytes_in, bytes_out, expected, attempt))

    return report


def _content_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _log_stored(request: DocumentRequest, located: LocatedDocument, download: _Download, url: str) -> None:
    label = located.compression_algorithm or "none"
    detected, members = download.gunzip.detected, download.gunzip.members
    if label.upper() not in ("GZIP", "NONE"):
        log.warning(
            "document %s of seller %s has an unknown compressionAlgorithm %r; its bytes are %s, handled by content",
            request.report_document_id, request.seller_id, label[:32], detected,
        )  # fmt: skip
    elif (label.upper() == "GZIP") != (detected == "gzip"):
        log.warning(
            "document %s of seller %s is labelled compression %s but its bytes are %s; handled by content",
            request.report_document_id, request.seller_id, label, detected,
        )  # fmt: skip
    replaced = download.transcoder.replaced if download.transcoder else 0
    if replaced:
        log.warning(
            "document %s of seller %s: %d undecodable characters replaced by U+FFFD (counted in the manifest)",
            request.report_document_id, request.seller_id, replaced,
        )  # fmt: skip
    if download.kept_existing:
        # Another run committed the document and stopped before its manifest (or is writing it now).
        log.warning(
            "document %s of seller %s was already stored with the same bytes by another run; kept that file, "
            "writing its manifest", request.report_document_id, request.seller_id,
        )  # fmt: skip
        return
    log.info(
        "document %s of seller %s downloaded from %s (%s, %d gzip members, inflated with %s)",
        request.report_document_id, request.seller_id, host_of(url), detected, members, INFLATE_BACKEND,
    )  # fmt: skip


def check_document_id(located: LocatedDocument, request: DocumentRequest) -> None:
    """Refuse a located document that is not the one requested (a confused or forged response)."""
    if located.report_document_id != request.report_document_id:
        raise DocumentRejected("getReportDocument returned a different reportDocumentId than requested")
