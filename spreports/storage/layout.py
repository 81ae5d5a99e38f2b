"""The storage layout: escaped path parts, a document's key, the manifest and where it goes."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spreports.errors import StorageError

ERRORS_DIR = "_errors"
INDEX_DIR = "_index"
UNKNOWN_TYPE = "_unknown"
MAX_PART_LENGTH = 200
_SAFE = re.compile(r"[A-Za-z0-9_.-]")
_ALL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def safe_part(value: str, *, what: str) -> str:
    """One path component from an id: refused when empty, too long or holding NUL; otherwise escaped.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``%XX`` (UTF-8 bytes), and so
    does a leading ``.`` or ``_`` (no hidden files, no ``..``, no clash with ``_errors``/``_index``).
    """
    if not value or "\x00" in value:
        raise StorageError(f"refusing an empty {what} or one holding NUL")
    # Ids are nearly always safe as they are: one match instead of one per character.
    if _ALL_SAFE.fullmatch(value):
        escaped = value
    else:
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
    #: A FATAL report's reason, as its error document gives it (``errorDetails``); None otherwise.
    error_reason: str | None = None
    #: The earlier document of the same data window that this one restates (a newer version), if any.
    supersedes: str | None = None
    #: The typed twin's summary once the document was converted (``spreports.data``): its Parquet file's
    #: path under the root, rows written, rejected and unparsed counts, the first rejected line numbers.
    data: dict[str, Any] | None = None


def stored_day(manifest: Manifest) -> date | None:
    """The day folder a stored manifest is in (``.../<YYYY-MM-DD>/<id>.manifest.json``, a path or a URL)."""
    parts = manifest.manifest_location.replace("\\", "/").rsplit("/", 2)
    try:
        return date.fromisoformat(parts[-2]) if len(parts) == 3 else None
    except ValueError:
        return None


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as stored: indented JSON, UTF-8."""
    return (manifest.model_dump_json(indent=2) + "\n").encode("utf-8")


def manifest_parts(key: DocumentKey) -> list[list[str]]:
    """Where a document's manifest is written, in order: beside the document, then the index (the done-marker)."""
    return [[*key.directory(), key.name("manifest.json")], index_parts(key.seller_id, key.report_document_id)]
