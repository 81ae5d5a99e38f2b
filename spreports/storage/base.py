"""What every storage backend offers, and the part of it they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date
from typing import Protocol

from spreports.storage.layout import DocumentKey, Manifest, manifest_bytes, manifest_parts


class DocumentWriter(Protocol):
    """An open, not yet visible document: write bytes, then commit (visible, whole) or abort (gone)."""

    def write(self, data: bytes) -> None:
        """Append bytes."""

    @property
    def kept_existing(self) -> bool:
        """After ``commit(sha256)``: the same bytes were already stored there and were kept (not rewritten)."""

    def commit(self, sha256: str | None = None) -> str:
        """Make the document visible and return its location.

        ``sha256``, the digest of the bytes written, lets a backend keep an identical copy a concurrent
        run committed first instead of writing it again.
        """

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

    def remove_stale_parts(self, days: Sequence[date] | None = None) -> int:
        """Remove what writers killed mid-write left behind (for the documents of ``days``, or of any day
        when None); return how many."""


class ManifestWriting(ABC):
    """The manifest-writing half of a backend: two small whole files, the index copy last."""

    def write_manifest(self, key: DocumentKey, manifest: Manifest) -> None:
        """Beside the document, then in the index (the done-marker), each written whole."""
        body = manifest_bytes(manifest)
        for parts in manifest_parts(key):
            self.write_small(parts, body, content_type="application/json")

    @abstractmethod
    def write_small(self, parts: list[str], body: bytes, *, content_type: str) -> None:
        """Write one small file whole (atomically) at a relative path."""
