"""Documents on the simulator: pre-signed URLs, content per type and charset, expiry, restricted types."""

from __future__ import annotations

import gzip
import hashlib
import json
import xml.etree.ElementTree as ET

import pytest
import requests

from spreports.simulator import DocumentSpec, Simulator
from tests.sim import lwa_token, validate_response


def get_document(sim: Simulator, document_id: str, token: str | None = None, **params: str) -> requests.Response:
    response = requests.get(
        f"{sim.url}/reports/2021-06-30/documents/{document_id}",
        headers={"x-amz-access-token": token or lwa_token(sim)},
        params=params,
        timeout=30,
    )
    validate_response("getReportDocument", response)
    return response


def fetch(sim: Simulator, spec: DocumentSpec) -> tuple[dict[str, str], requests.Response]:
    document_id = sim.add_document(spec)
    answer = get_document(sim, document_id).json()
    return answer, requests.get(answer["url"], timeout=30)


@pytest.mark.parametrize(
    ("spec", "charset", "codec", "sample"),
    [
        (DocumentSpec(size=50_000, malformed_rate=0), "Cp1252", "cp1252", "€"),
        (DocumentSpec(size=50_000, gzip=False, malformed_rate=0), "Cp1252", "cp1252", "ü"),
        (
            DocumentSpec(
                report_type="GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                size=50_000,
                charset="windows-31j",
                malformed_rate=0,
            ),
            "windows-31j",
            "cp932",
            "日本",
        ),
        (DocumentSpec(size=50_000, charset="UTF-8", bom=True, malformed_rate=0), "UTF-8", "utf-8", "\ufeff"),
    ],
)
def test_document_bytes_match_their_declared_compression_and_charset(
    simulator: Simulator, spec: DocumentSpec, charset: str, codec: str, sample: str
) -> None:
    answer, download = fetch(simulator, spec)
    assert download.status_code == 200
    assert download.headers["Content-Type"].endswith(f"charset={charset}")
    assert int(download.headers["Content-Length"]) == len(download.content)
    data = gzip.decompress(download.content) if answer.get("compressionAlgorithm") == "GZIP" else download.content
    assert ("compressionAlgorithm" in answer) == spec.gzip
    assert 0 < len(data) <= spec.size
    text = data.decode(codec)  # strict: the bytes really are in the declared charset
    assert sample in text
    lines = text.lstrip("\ufeff").splitlines()
    assert len({line.count("\t") for line in lines}) == 1  # every row has the header's columns
    assert (
        hashlib.sha256(data).digest()
        == hashlib.sha256(b"".join(simulator.document_content(answer["reportDocumentId"]))).digest()
    )


def test_xml_and_json_reports_are_well_formed(simulator: Simulator) -> None:
    _, xml = fetch(simulator, DocumentSpec(report_type="GET_XML_BROWSE_TREE_DATA", size=80_000))
    root = ET.fromstring(gzip.decompress(xml.content))
    assert root.tag == "Result" and len(root.findall("Node")) > 10
    _, js = fetch(simulator, DocumentSpec(report_type="GET_SALES_AND_TRAFFIC_REPORT", size=80_000, gzip=False))
    assert js.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(js.content)["salesAndTrafficByAsin"]


def test_tiny_and_empty_documents(simulator: Simulator) -> None:
    _, empty = fetch(simulator, DocumentSpec(size=0))
    assert gzip.decompress(empty.content) == b""
    _, tiny = fetch(simulator, DocumentSpec(size=1, gzip=False))
    assert tiny.content.startswith(b"item-name\t") and tiny.content.count(b"\n") == 1


def test_content_encoding_header_only_on_request(simulator: Simulator) -> None:
    document_id = simulator.add_document(DocumentSpec(size=10_000))
    plain = requests.get(get_document(simulator, document_id).json()["url"], timeout=30)
    assert plain.headers["Content-Encoding"] == "identity" and plain.content[:2] == b"\x1f\x8b"
    url = get_document(simulator, document_id, enableContentEncodingUrlHeader="true").json()["url"]
    decoded = requests.get(url, timeout=30)
    assert decoded.headers["Content-Encoding"] == "gzip" and decoded.content.startswith(b"item-name")


def test_urls_expire_after_five_simulated_minutes_with_an_s3_error(simulator: Simulator) -> None:
    url = get_document(simulator, simulator.add_document(DocumentSpec(size=1000))).json()["url"]
    assert "X-Amz-Signature=" in url and url.startswith(simulator.url + "/")
    simulator.advance(290)  # leaves 10 simulated seconds for a slow machine
    assert requests.get(url, timeout=30).status_code == 200
    simulator.advance(11)
    expired = requests.get(url, timeout=30)
    assert expired.status_code == 403
    error = ET.fromstring(expired.content)
    assert error.findtext("Code") == "AccessDenied" and error.findtext("Message") == "Request has expired"
    forged = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=00"), timeout=30)
    assert forged.status_code == 403 and ET.fromstring(forged.content).findtext("Code") == "SignatureDoesNotMatch"


def test_restricted_report_documents_demand_a_restricted_data_token(simulator: Simulator) -> None:
    document_id = simulator.add_document(
        DocumentSpec(report_type="GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING", size=5000)
    )
    token = lwa_token(simulator)
    refused = get_document(simulator, document_id, token)
    assert refused.status_code == 403
    path = f"/reports/2021-06-30/documents/{document_id}"
    rdt_answer = requests.post(
        f"{simulator.url}/tokens/2021-03-01/restrictedDataToken",
        headers={"x-amz-access-token": token},
        json={"restrictedResources": [{"method": "GET", "path": path}]},
        timeout=30,
    )
    rdt = validate_response("createRestrictedDataToken", rdt_answer)
    assert rdt["restrictedDataToken"].startswith("Atz.sprdt|") and rdt["expiresIn"] == 3600
    granted = get_document(simulator, document_id, rdt["restrictedDataToken"])
    assert granted.status_code == 200
    other = simulator.add_document(DocumentSpec(report_type="GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING", size=5000))
    assert get_document(simulator, other, rdt["restrictedDataToken"]).status_code == 403  # the RDT names one path
    bad = requests.post(f"{simulator.url}/tokens/2021-03-01/restrictedDataToken", headers={"x-amz-access-token": token},
                        json={"restrictedResources": [{"method": "", "path": path}]}, timeout=30)  # fmt: skip
    assert validate_response("createRestrictedDataToken", bad)["errors"][0]["code"] == "InvalidRequest"


def test_documents_of_another_seller_are_not_found(simulator: Simulator) -> None:
    from spreports.simulator import SellerAccount, start_simulator
    from tests.sim import quick_config

    sim = start_simulator(
        quick_config(sellers=(SellerAccount("A1ONE", "Atzr|one"), SellerAccount("A2TWO", "Atzr|two")))
    )
    try:
        document_id = sim.add_document(DocumentSpec(size=100), seller_id="A2TWO")
        assert get_document(sim, document_id, lwa_token(sim, "A1ONE")).status_code == 400  # unknown to A1ONE
        assert get_document(sim, document_id, lwa_token(sim, "A2TWO")).status_code == 200
        assert {r.seller_id for r in sim.requests("getReportDocument")} == {"A1ONE", "A2TWO"}
    finally:
        sim.stop()
