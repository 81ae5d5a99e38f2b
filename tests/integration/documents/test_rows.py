"""A stored document is converted to typed rows by a worker of the ``data`` queue, with no other step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker

from spreports import enqueue_document, names
from spreports.data.catalogue import connect
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.processes import wait_for


def test_a_stored_document_gets_its_rows_from_the_data_queue(
    sim: Simulator, settings: Settings, celery_app: Any
) -> None:
    document_id = sim.add_document(DocumentSpec(report_type="GET_MERCHANT_LISTINGS_ALL_DATA", malformed_rate=0))
    celery_app.loader.import_default_modules()
    queues = [names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE, names.DATA_QUEUE]
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, queues=queues,
                      shutdown_timeout=20.0):  # fmt: skip
        report_id = sim.report_of_document(document_id)["reportId"]  # its report names the type
        enqueue_document(document_id, report_id=report_id, settings=settings).get(timeout=120)
        storage = open_storage(settings)

        def converted() -> dict[str, Any] | None:
            manifest = storage.find(sim.seller_id, document_id)
            return manifest.data if manifest is not None else None

        data = wait_for(converted, timeout=120)
    assert data["rows"] > 0 and data["rows_rejected"] == 0
    assert (Path(settings.storage.url) / data["path"]).is_file()
    with connect(settings) as db:
        rows = db.execute("SELECT count(*) FROM listings WHERE _report_document_id = ?", [document_id]).fetchone()
    assert rows == (data["rows"],)
