"""Storage keys and manifests for the storage tests of both tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from spreports.storage import DocumentKey, Manifest

DAY = date(2026, 11, 28)


def key(document_id: str = "DOC-1", **extra: object) -> DocumentKey:
    """The key of a document of seller A1SELLER, type GET_X, stored on :data:`DAY`."""
    fields: dict[str, object] = {"seller_id": "A1SELLER", "report_type": "GET_X", "day": DAY, **extra}
    return DocumentKey(report_document_id=document_id, **fields)  # type: ignore[arg-type]


def manifest(location: str, document_id: str = "DOC-1", seller_id: str = "A1SELLER") -> Manifest:
    """A plausible manifest of a document stored at ``location``."""
    return Manifest(
        seller_id=seller_id, report_document_id=document_id, location=location, manifest_location="m",
        content_type="text/plain", compression="gzip", bytes_in=1, bytes_out=2, sha256="0" * 64, attempts=1,
        stored_at=datetime(2026, 11, 28, tzinfo=UTC),
    )  # fmt: skip
