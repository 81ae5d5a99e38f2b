"""The pipeline with the real SP-API client against the simulator (library level, local storage and S3)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from spreports.documents import DocumentRequest, RetrievalOptions, RetrievalResult, retrieve_document
from spreports.errors import DocumentRejected
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.spapi import SpapiClient
from spreports.storage import open_storage
from tests.integration.documents.conftest import simulator_settings
from tests.integration.documents.helpers import check_stored, downloads, expected_utf8

URLS_SEEN: list[str] = []
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


def retrieve(
    sim: Simulator, settings: Settings, redis_client: redis.Redis, document_id: str, **locate_kwargs: Any
) -> tuple[RetrievalResult, Callable[[], int]]:
    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    report = sim.report_of_document(document_id)
    calls = [0]

    def locate() -> Any:
        calls[0] += 1
        located = client.get_report_document(document_id, report_type=report["reportType"], **locate_kwargs)
        URLS_SEEN.append(located.url.get_secret_value())
        return located

    request = DocumentRequest(
        seller_id=sim.seller_id, report_document_id=document_id, report_id=report["reportId"],
        report_type=report["reportType"],
    )  # fmt: skip
    result = retrieve_document(
        request, locate=locate, report=report, storage=open_storage(settings), options=RetrievalOptions.from_settings(settings),
        sleep=lambda s: None,
    )  # fmt: skip
    return result, lambda: calls[0]


@pytest.mark.parametrize(
    "spec",
    [
        DocumentSpec(gzip=True, charset="Cp1252", size=300_000),
        DocumentSpec(gzip=False, charset="Cp1252"),
        DocumentSpec(gzip=True, charset="UTF-8", bom=True),
        DocumentSpec(gzip=False, charset="UTF-8"),
        # Orders: the simulator's listing rows hold an em dash, which cp932 cannot encode.
        DocumentSpec(report_type=ORDERS, gzip=True, charset="windows-31j", seed=3),
        DocumentSpec(report_type=ORDERS, gzip=True, charset="Shift_JIS", seed=4),
        DocumentSpec(gzip=True, charset="Cp1252", mislabel="gzip_declared_plain"),
        DocumentSpec(gzip=True, charset="Cp1252", mislabel="plain_declared_gzip"),
        DocumentSpec(report_type="GET_XML_BROWSE_TREE_DATA", charset="UTF-8"),
    ],
    ids=lambda spec: f"{spec.charset}-{'gz' if spec.gzip else 'plain'}-{spec.mislabel}-{spec.report_type[:12]}",
)
def test_every_kind_of_document_is_stored_whole_as_utf8(
    sim: Simulator, settings: Settings, redis_client: redis.Redis, spec: DocumentSpec
) -> None:
    japanese = spec.charset in ("windows-31j", "Shift_JIS")
    document_id = sim.add_document(spec, marketplace_ids=("A1VC38T7YXB528",) if japanese else None)
    result, _ = retrieve(sim, settings, redis_client, document_id)
    manifest = result.manifest
    check_stored(manifest, expected_utf8(sim, document_id, spec.charset or "UTF-8"))
    assert (manifest.source_charset, manifest.stored_charset, manifest.replaced_chars) == (spec.charset, "utf-8", 0)
    assert manifest.report_id == sim.report_of_document(document_id)["reportId"]
    assert manifest.report is not None and manifest.report["reportDocumentId"] == document_id
    assert Path(manifest.location).is_relative_to(Path(settings.storage.url))
    assert downloads(sim) == 1


def test_content_encoding_gzip_is_not_inflated_twice(
    sim: Simulator, settings: Settings, redis_client: redis.Redis
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=200_000))
    result, _ = retrieve(sim, settings, redis_client, document_id, enable_content_encoding_url_header=True)
    check_stored(result.manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert result.manifest.content_encoding == "gzip"


@pytest.mark.parametrize("fault", ["expired_urls", "truncated_gzip", "dropped_connections"])
def test_a_failed_first_attempt_is_retried_with_a_fresh_url(
    sim: Simulator, settings: Settings, redis_client: redis.Redis, fault: str
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=2 * 2**20))
    sim.set_faults(**{fault: 1})
    result, locate_calls = retrieve(sim, settings, redis_client, document_id)
    check_stored(result.manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert (result.manifest.attempts, locate_calls(), downloads(sim)) == (2, 2, 2)
    assert len(sim.requests("getReportDocument")) == 2


def test_a_host_not_allowed_is_refused(sim: Simulator, settings: Settings, redis_client: redis.Redis) -> None:
    document_id = sim.add_document(DocumentSpec())
    strict = settings.model_copy(
        update={"documents": settings.documents.model_copy(update={"allowed_hosts": ["*.amazonaws.com"]})}
    )
    with pytest.raises(DocumentRejected, match="not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"):
        retrieve(sim, strict, redis_client, document_id)
    assert downloads(sim) == 0
    assert not any(Path(strict.storage.url).rglob("*.txt")) if Path(strict.storage.url).exists() else True


def test_a_decompression_bomb_is_refused_and_nothing_stored(
    sim: Simulator, settings: Settings, redis_client: redis.Redis
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, size=8 * 2**20))
    small = settings.model_copy(
        update={"documents": settings.documents.model_copy(update={"max_decompressed_bytes": 2**20})}
    )
    with pytest.raises(DocumentRejected, match="decompression bomb"):
        retrieve(sim, small, redis_client, document_id)
    root = Path(settings.storage.url)
    assert not root.exists() or [p for p in root.rglob("*") if p.is_file()] == []


def test_s3_storage_multipart_and_no_url_anywhere(
    sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path, aws_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    bucket = f"docs-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    settings = simulator_settings(sim, redis_url, tmp_path, f"s3://{bucket}/reports")
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=20 * 2**20))
    sim.set_faults(expired_urls=1)
    URLS_SEEN.clear()
    with caplog.at_level(logging.DEBUG):
        result, _ = retrieve(sim, settings, redis_client, document_id)
    manifest = result.manifest
    key = manifest.location.removeprefix(f"s3://{bucket}/")
    assert key.startswith(f"reports/{sim.seller_id}/GET_MERCHANT_LISTINGS_ALL_DATA/")
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == expected_utf8(sim, document_id, "Cp1252")
    import hashlib

    assert manifest.sha256 == hashlib.sha256(stored).hexdigest() and manifest.bytes_out == len(stored)
    assert open_storage(settings).find(sim.seller_id, document_id) is not None
    queries = [url.split("?", 1)[1] for url in URLS_SEEN if "?" in url]
    assert queries
    for text in (caplog.text, manifest.model_dump_json(), str(result.summary())):
        assert "X-Amz-Signature" not in text and not any(query in text for query in queries)
