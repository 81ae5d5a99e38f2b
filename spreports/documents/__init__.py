"""Document retrieval: the streaming pipeline from a pre-signed URL into the storage.

``retrieve_document`` is the one entry point; ``locate`` is called right before each attempt (it is
getReportDocument, so every attempt downloads from a fresh pre-signed URL). A process that retrieves
documents calls :func:`prepare_process` once when it starts.
"""

from __future__ import annotations

from spreports.documents.claim import DocumentClaim
from spreports.documents.decode import ContentType, Gunzip, Transcoder
from spreports.documents.fetch import check_allowed, install_log_filter
from spreports.documents.pipeline import (
    LocatedDocument,
    RetrievalOptions,
    RetrievalResult,
    retrieve_document,
)
from spreports.task_arguments import DocumentRequest


def prepare_process() -> None:
    """Set up this process for retrieval (once, when it starts): reuse of freed buffers, log redaction."""
    from spreports.documents.pump import keep_freed_blocks

    keep_freed_blocks()
    install_log_filter()


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
    "prepare_process",
    "retrieve_document",
]
