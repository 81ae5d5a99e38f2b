"""Task: convert one stored document to typed Parquet rows (queue ``data``).

Thin over :func:`spreports.data.convert.convert_document`: it parses its arguments, finds the stored
document's manifest, calls the library and maps its errors. Queued once a document is stored
(:func:`queue_conversion`), on a queue of its own so that retrieval stays as fast and as lean as it is.

A worker without the data extra (pyarrow) says so once in its log, in one line naming the extra, and
every conversion it is handed succeeds doing nothing: the raw document is kept, and ``spreports data
rebuild`` converts it later where the extra is installed. A document that cannot be read as its format
fails the task with one line; a storage that cannot answer now is a retry.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task

from spreports import names
from spreports.data.extra import EXTRA_HINT, missing_extra
from spreports.errors import SpreportsError, StorageUnavailable, TransientError
from spreports.task_arguments import ConvertRequest
from spreports.tasks import signatures
from spreports.tasks.context import context
from spreports.tasks.retrying import retry_later

log = logging.getLogger(__name__)

_told_missing = False


def queue_conversion(request: ConvertRequest) -> None:
    """Queue the conversion of a stored document (routed to the ``data`` queue), on a best-effort basis: the
    document is stored whatever happens here, and ``spreports data rebuild`` converts what was not queued."""
    try:
        signatures.conversion(current_app, request).apply_async()
    except Exception as exc:  # the broker refused the message: the stored document must not fail for it
        log.warning(
            "document %s of seller %s: its conversion to rows was not queued (%s); `spreports data rebuild` converts it",
            request.report_document_id, request.seller_id, type(exc).__name__,
        )  # fmt: skip


# Nobody waits for a conversion: its outcome is in the manifest's data section, no result is kept.
@shared_task(name=names.CONVERT_DOCUMENT, bind=True, throws=(SpreportsError,), ignore_result=True)
def convert_document(self: Task, seller_id: str, report_document_id: str) -> dict[str, Any]:  # type: ignore[type-arg]
    """Convert a stored document to Parquet; returns the manifest's ``data`` section (empty when nothing was done)."""
    request = ConvertRequest.parse(seller_id=seller_id, report_document_id=report_document_id)
    if missing_extra("pyarrow"):
        _tell_missing_once()
        return {}
    from spreports.data.convert import convert_document as convert

    ctx = context(self.app)
    try:
        manifest = ctx.storage.find(request.seller_id, request.report_document_id)
        if manifest is None:
            log.warning("document %s of seller %s: not stored; nothing to convert", report_document_id, seller_id)
            return {}
        conversion = convert(ctx.storage, manifest, settings=ctx.settings)
    except TransientError as exc:
        retry_later(self, exc)
    except OSError as exc:  # pyarrow's file systems raise OSError for I/O and S3 failures
        retry_later(self, StorageUnavailable(f"the storage failed while converting ({type(exc).__name__})"))
    if conversion is None:
        return {}
    log.info(
        "document %s of seller %s: %d rows as Parquet (%d rejected, %d values unparsed)",
        report_document_id, seller_id, conversion.rows, conversion.rows_rejected, conversion.values_unparsed,
    )  # fmt: skip
    return conversion.manifest_data()


def _tell_missing_once() -> None:
    global _told_missing
    if not _told_missing:
        _told_missing = True
        log.warning("documents are not converted to rows here: %s", EXTRA_HINT)
