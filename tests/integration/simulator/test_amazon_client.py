"""A client written from Amazon's documentation with plain ``requests`` works against the simulator,
and multi-GB documents stream without the simulator holding them in memory."""

from __future__ import annotations

import gc
import gzip
import resource
import time
import zlib

import requests

from spreports.simulator import DocumentSpec, Simulator


def amazon_client_roundtrip(
    token_url: str, endpoint: str, client_id: str, client_secret: str, refresh_token: str
) -> tuple[dict[str, object], bytes, str]:
    """LWA token -> createReport -> poll getReport -> getReportDocument -> download + gunzip."""
    lwa = requests.post(
        token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        timeout=30,
    )
    lwa.raise_for_status()
    session = requests.Session()
    session.headers.update(
        {"x-amz-access-token": lwa.json()["access_token"], "User-Agent": "demo-app/1.0 (Language=Python)"}
    )
    created = session.post(
        f"{endpoint}/reports/2021-06-30/reports",
        json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"]},
        timeout=30,
    )
    assert created.status_code == 202
    report_id = created.json()["reportId"]
    deadline = time.monotonic() + 60
    while True:
        report = session.get(f"{endpoint}/reports/2021-06-30/reports/{report_id}", timeout=30).json()
        if report["processingStatus"] in ("DONE", "CANCELLED", "FATAL") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["processingStatus"] == "DONE"
    document = session.get(f"{endpoint}/reports/2021-06-30/documents/{report['reportDocumentId']}", timeout=30).json()
    download = requests.get(document["url"], timeout=30)  # a pre-signed URL takes no SP-API headers
    download.raise_for_status()
    data = gzip.decompress(download.content) if document.get("compressionAlgorithm") == "GZIP" else download.content
    charset = download.headers["Content-Type"].split("charset=")[1]
    return report, data, charset


def test_a_plain_requests_client_gets_a_report_end_to_end(simulator: Simulator) -> None:
    env = simulator.env()
    _, data, charset = amazon_client_roundtrip(
        env["SPREPORTS_LWA__TOKEN_URL"], env["SPREPORTS_SPAPI__ENDPOINT"], env["SPREPORTS_LWA__CLIENT_ID"],
        env["SPREPORTS_LWA__CLIENT_SECRET"], env["SPREPORTS_LWA__REFRESH_TOKEN"],
    )  # fmt: skip
    assert charset == "Cp1252"
    text = data.decode("cp1252")
    assert text.startswith("item-name\titem-description\tlisting-id\tseller-sku\tprice\tquantity")
    assert text.count("\n") > 10
    operations = [r.operation for r in simulator.requests()]
    assert operations[:2] == ["lwaToken", "createReport"] and operations[-2:] == [
        "getReportDocument",
        "downloadDocument",
    ]


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_a_multi_gib_document_streams_without_memory_growth(simulator: Simulator) -> None:
    document_id = simulator.add_document(DocumentSpec(size=6 * 2**30, gzip=True, charset="Cp1252"))
    token = simulator.access_token()
    answer = requests.get(
        f"{simulator.url}/reports/2021-06-30/documents/{document_id}", headers={"x-amz-access-token": token}, timeout=30
    ).json()
    gc.collect()
    before = _rss_kib()
    with requests.get(answer["url"], stream=True, timeout=60) as download:
        assert int(download.headers["Content-Length"]) > 2**30  # the whole (compressed) size is announced up front
        inflater = zlib.decompressobj(wbits=31)
        received = inflated = 0
        for chunk in download.raw.stream(1024 * 1024, decode_content=False):
            received += len(chunk)
            inflated += len(inflater.decompress(chunk))
            if received >= 64 * 2**20:
                break
    grown = _rss_kib() - before
    assert inflated > 200 * 2**20
    assert grown < 64 * 1024, f"RSS grew by {grown} KiB while streaming"  # the simulator shares this process
