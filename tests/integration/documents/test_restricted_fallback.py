"""A restricted document whose type nobody told us: the 403 is answered with a restricted data token for its path."""

from __future__ import annotations

from typing import Any

import pytest

from spreports import enqueue_document
from spreports.errors import InvalidRequest
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.spapi import SpapiClient
from spreports.storage import open_storage

RESTRICTED = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"


def test_a_restricted_document_of_unknown_type_is_stored_through_the_403_fallback(
    sim: Simulator, settings: Settings, celery_worker: Any
) -> None:
    document_id = sim.add_document(DocumentSpec(report_type=RESTRICTED, size=50_000))
    # No report id, no type: the task cannot learn the type and asks as for any document.
    summary = enqueue_document(document_id, settings=settings).get(timeout=120)
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    calls = [(r.operation, r.status) for r in sim.requests() if r.operation != "lwaToken"]
    assert calls[:3] == [("getReportDocument", 403), ("createRestrictedDataToken", 200), ("getReportDocument", 200)]


def test_a_plain_document_of_unknown_type_needs_no_token(sim: Simulator, settings: Settings, redis_client: Any) -> None:
    document_id = sim.add_document(DocumentSpec(size=100))
    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    assert client.get_report_document(document_id).report_document_id == document_id
    assert sim.requests("createRestrictedDataToken") == []


def test_a_known_plain_type_answering_403_is_not_retried_with_a_token(
    sim: Simulator, settings: Settings, redis_client: Any
) -> None:
    # The fallback is for an unknown type only: a type said to be plain is taken at its word.
    document_id = sim.add_document(DocumentSpec(report_type=RESTRICTED, size=100))
    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    with pytest.raises(InvalidRequest) as caught:
        client.get_report_document(document_id, report_type="GET_MERCHANT_LISTINGS_ALL_DATA")
    assert caught.value.status == 403
    assert sim.requests("createRestrictedDataToken") == []
