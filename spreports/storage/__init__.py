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
The backends live in ``local`` and ``s3``; the layout and the manifest in ``layout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from spreports.settings import Settings
from spreports.storage.base import DocumentWriter, Storage
from spreports.storage.layout import (
    ERRORS_DIR,
    INDEX_DIR,
    UNKNOWN_TYPE,
    DocumentKey,
    Manifest,
    index_parts,
    manifest_bytes,
    safe_part,
)
from spreports.storage.local import STALE_PART_SECONDS, LocalStorage, LocalWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from spreports.storage.s3 import S3_PART_SIZE, S3Storage, S3Writer

#: Loaded on first use (:func:`__getattr__`): a process storing into a directory never loads the S3 code.
_S3_NAMES = ("S3_PART_SIZE", "S3Storage", "S3Writer")

__all__ = [
    "ERRORS_DIR",
    "INDEX_DIR",
    "S3_PART_SIZE",
    "STALE_PART_SECONDS",
    "UNKNOWN_TYPE",
    "DocumentKey",
    "DocumentWriter",
    "LocalStorage",
    "LocalWriter",
    "Manifest",
    "S3Storage",
    "S3Writer",
    "Storage",
    "index_parts",
    "manifest_bytes",
    "open_storage",
    "safe_part",
]


def open_storage(settings: Settings, *, s3_client: S3Client | None = None) -> Storage:
    """The storage ``SPREPORTS_STORAGE__URL`` names: ``s3://bucket/prefix`` or a directory."""
    url = settings.storage.url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from spreports.storage.s3 import S3Storage

        return S3Storage(parts.netloc, parts.path.strip("/"), client=s3_client)
    return LocalStorage(Path(parts.path if parts.scheme == "file" else url))


def __getattr__(name: str) -> object:
    if name in _S3_NAMES:
        from spreports.storage import s3

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
