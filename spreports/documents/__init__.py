"""Document retrieval: the streaming pipeline from a pre-signed URL into the storage.

``retrieve_document`` is the one entry point; ``locate`` is called right before each attempt (it is
getReportDocument, so every attempt downloads from a fresh pre-signed URL).
"""

from __future__ import annotations

from spreports.documents.claim import DocumentClaim
from spreports.documents.decode import ContentType, Gunzip, Transcoder
from spreports.documents.fetch import check_allowed
from spreports.documents.pipeline import (
    DocumentRequest,
    LocatedDocument,
    RetrievalOptions,
    RetrievalResult,
    retrieve_document,
)

__all__ = [
    "ContentType",
    "DocumentClaim",
    "DocumentRequest",
    "Gunzip",
    "LocatedDocument",
    "RetrievalOptions",
    "RetrievalResult",
    "Transcoder",
    "check_allowed",
    "retrieve_document",
]
