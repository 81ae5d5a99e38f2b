"""A ``compressionAlgorithm`` the model does not list yet: the bytes decide, the document is stored all the same."""

from __future__ import annotations

import logging

import pytest
import redis

from spreports.documents import DocumentRequest, RetrievalOptions, retrieve_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.spapi import SpapiClient
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored

LABEL = "ZSTD"


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip-bytes", "plain-bytes"])
def test_an_unknown_compression_algorithm_is_decided_by_the_bytes(
    sim: Simulator, settings: Settings, redis_client: redis.Redis, gzip: bool, caplog: pytest.LogCaptureFixture
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=gzip, charset="UTF-8", algorithm=LABEL))
    report = sim.report_of_document(document_id)
    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    request = DocumentRequest(
        seller_id=sim.seller_id, report_document_id=document_id, report_id=report["reportId"],
        report_type=report["reportType"],
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="spreports.documents"):
        result = retrieve_document(
            request,
            locate=lambda: client.get_report_document(document_id, report_type=report["reportType"]),
            report=report,
            storage=open_storage(settings),
            options=RetrievalOptions.from_settings(settings),
            sleep=lambda s: None,
        )
    # Stored decompressed when the bytes are gzip, as they are when they are plain.
    check_stored(result.manifest, b"".join(sim.document_content(document_id)))
    assert (result.manifest.compression, result.manifest.compression_label) == ("gzip" if gzip else "none", LABEL)
    told = [r.getMessage() for r in caplog.records if "unknown compressionAlgorithm" in r.getMessage()]
    assert len(told) == 1 and document_id in told[0], told
