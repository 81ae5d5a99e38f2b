"""The retrieval pipeline against a local HTTP server and local storage."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spreports.documents import DocumentRequest, RetrievalOptions, retrieve_document
from spreports.documents.fetch import install_log_filter
from spreports.errors import DocumentRejected, IncompleteDownload, SpreportsError
from spreports.storage import LocalStorage
from tests.integration.documents.httpserver import DocumentServer, Locator, Route

TEXT = "sku\tname\tprice\nA-1\tCafé „Größe“ \u2013 naïve\t12,50 €\nB-2\tŠpeciál ™ œuvre\t3,00 €\n" * 50
JP_TEXT = "商品名\t価格\n①限定版\t1000円\n㈱テスト\t2000円\n" * 40


@pytest.fixture
def server() -> Iterator[DocumentServer]:
    """A document server on loopback for one test."""
    srv = DocumentServer()
    yield srv
    srv.stop()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    """Local storage under tmp_path/reports."""
    return LocalStorage(tmp_path / "reports")


@pytest.fixture
def options(server: DocumentServer) -> RetrievalOptions:
    """Options allowing exactly the local server's origin, with quick timeouts."""
    return RetrievalOptions(allowed_hosts=["*.amazonaws.com", server.origin], read_timeout=10, connect_timeout=5)


def request(document_id: str = "DOC-1", **extra: object) -> DocumentRequest:
    return DocumentRequest(seller_id="A1SELLER", report_document_id=document_id, report_type="GET_X", **extra)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def stored(storage: LocalStorage, location: str) -> bytes:
    data = Path(location).read_bytes()
    assert Path(location).is_relative_to(storage.root)
    return data


def run(
    server: DocumentServer,
    storage: LocalStorage,
    options: RetrievalOptions,
    route: Route,
    compression: str | None = None,
    document_id: str = "DOC-1",
    **kwargs: object,
):  # type: ignore[no-untyped-def]
    url = server.add(f"/{document_id}", route)
    locator = Locator(document_id, [url], compression)
    result = retrieve_document(
        request(document_id), locate=locator, storage=storage, options=options, sleep=lambda s: None, **kwargs
    )
    return result, locator


@pytest.mark.parametrize(
    ("label", "codec", "text"),
    [
        ("Cp1252", "cp1252", TEXT),
        ("windows-1252", "cp1252", TEXT),
        ("UTF-8", "utf-8", TEXT),
        ("windows-31j", "cp932", JP_TEXT),
        ("Shift_JIS", "cp932", JP_TEXT),
        ("iso-8859-1", "latin-1", "Grüße\tà la carte\n" * 10),
    ],
)
def test_gzip_text_in_every_charset_is_stored_as_utf8(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, label: str, codec: str, text: str
) -> None:
    body = gzip.compress(text.encode(codec))
    route = Route(body=body, headers={"Content-Type": f"text/plain; charset={label}"})
    result, _ = run(server, storage, options, route, compression="GZIP")
    data = stored(storage, result.manifest.location)
    assert data.decode("utf-8") == text
    manifest = result.manifest
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert (manifest.bytes_in, manifest.bytes_out) == (len(body), len(data))
    assert (manifest.source_charset, manifest.stored_charset, manifest.transcoded) == (label, "utf-8", True)
    assert (manifest.compression, manifest.gzip_members, manifest.replaced_chars) == ("gzip", 1, 0)
    assert manifest.location.endswith("/A1SELLER/GET_X/" + manifest.stored_at.date().isoformat() + "/DOC-1.txt")
    on_disk = json.loads(Path(manifest.manifest_location).read_text())
    assert on_disk["sha256"] == manifest.sha256 and on_disk["attempts"] == 1
    found = storage.find("A1SELLER", "DOC-1")
    assert found is not None and found.model_dump(mode="json") == manifest.model_dump(mode="json")


def test_utf8_bom_is_stripped(server: DocumentServer, storage: LocalStorage, options: RetrievalOptions) -> None:
    route = Route(body=b"\xef\xbb\xbf" + TEXT.encode(), headers={"Content-Type": "text/plain;charset=UTF-8"})
    result, _ = run(server, storage, options, route)
    assert stored(storage, result.manifest.location) == TEXT.encode()


def test_plain_body_labelled_gzip_is_stored_not_inflated(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, caplog: pytest.LogCaptureFixture
) -> None:
    route = Route(body=TEXT.encode("cp1252"), headers={"Content-Type": "text/plain; charset=Cp1252"})
    with caplog.at_level(logging.WARNING):
        result, _ = run(server, storage, options, route, compression="GZIP")
    assert stored(storage, result.manifest.location).decode() == TEXT
    assert (result.manifest.compression, result.manifest.compression_label) == ("none", "GZIP")
    assert "labelled compression GZIP" in caplog.text


def test_gzip_body_without_label_is_inflated(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    route = Route(body=gzip.compress(TEXT.encode("cp1252")), headers={"Content-Type": "text/plain; charset=Cp1252"})
    result, _ = run(server, storage, options, route, compression=None)
    assert stored(storage, result.manifest.location).decode() == TEXT
    assert result.manifest.compression == "gzip"


def test_multi_member_gzip_is_inflated_whole(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    parts = [TEXT[:1000], TEXT[1000:1001], TEXT[1001:]]
    body = b"".join(gzip.compress(p.encode("cp1252")) for p in parts)
    route = Route(body=body, headers={"Content-Type": "text/plain; charset=Cp1252"})
    result, _ = run(server, storage, options.model_copy(update={"chunk_size": 7}), route, compression="GZIP")
    assert stored(storage, result.manifest.location).decode() == TEXT
    assert result.manifest.gzip_members == 3


def test_content_encoding_gzip_is_inflated_exactly_once(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    # The document itself is a gzip of a text that looks like gzip data would if inflated twice.
    body = gzip.compress(TEXT.encode("utf-8"))
    headers = {"Content-Type": "text/plain; charset=UTF-8", "Content-Encoding": "gzip"}
    result, _ = run(server, storage, options, Route(body=body, headers=headers), compression="GZIP")
    assert stored(storage, result.manifest.location).decode() == TEXT
    assert (result.manifest.content_encoding, result.manifest.bytes_in) == ("gzip", len(body))


def test_binary_document_is_stored_as_is(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 20
    result, _ = run(
        server, storage, options, Route(body=gzip.compress(pdf), headers={"Content-Type": "application/pdf"})
    )
    assert stored(storage, result.manifest.location) == pdf
    assert result.manifest.location.endswith(".pdf") and not result.manifest.transcoded


def test_transcoding_off_stores_the_source_bytes(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    raw = TEXT.encode("cp1252")
    route = Route(body=gzip.compress(raw), headers={"Content-Type": "text/plain; charset=Cp1252"})
    result, _ = run(server, storage, options.model_copy(update={"transcode": False}), route)
    assert stored(storage, result.manifest.location) == raw
    assert (result.manifest.stored_charset, result.manifest.transcoded) == ("Cp1252", False)


def test_undecodable_bytes_are_replaced_and_counted(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, caplog: pytest.LogCaptureFixture
) -> None:
    raw = b"ok\x81here\x8d and \x90\n" * 3  # bytes cp1252 leaves undefined
    route = Route(body=raw, headers={"Content-Type": "text/plain; charset=Cp1252"})
    with caplog.at_level(logging.WARNING):
        result, _ = run(server, storage, options, route)
    assert stored(storage, result.manifest.location).decode() == raw.decode("cp1252", "replace")
    assert result.manifest.replaced_chars == 9
    assert "9 undecodable characters replaced" in caplog.text


def test_strict_decoding_refuses_and_stores_nothing(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    route = Route(body=b"fine\nnot \x81 fine\n", headers={"Content-Type": "text/plain; charset=Cp1252"})
    with pytest.raises(DocumentRejected, match="undecodable cp1252 bytes"):
        run(server, storage, options.model_copy(update={"strict_decoding": True}), route)
    assert files_under(storage.root) == []


def test_unknown_charset_is_refused(server: DocumentServer, storage: LocalStorage, options: RetrievalOptions) -> None:
    route = Route(body=b"x", headers={"Content-Type": "text/plain; charset=x-klingon"})
    with pytest.raises(DocumentRejected, match="unknown charset"):
        run(server, storage, options, route)


def test_expired_url_on_first_attempt_is_retried_with_a_fresh_url(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    good = server.add("/fresh", Route(body=gzip.compress(b"a\tb\n"), headers={"Content-Type": "text/plain"}))
    expired = server.add("/stale", Route(faults=["expired"]))
    locator = Locator("DOC-1", [expired, good], "GZIP")
    result = retrieve_document(request(), locate=locator, storage=storage, options=options, sleep=lambda s: None)
    assert stored(storage, result.manifest.location) == b"a\tb\n"
    assert (locator.calls, result.manifest.attempts, server.log) == (2, 2, ["/stale", "/fresh"])


@pytest.mark.parametrize("fault", ["truncate", "drop", "5xx"])
def test_cut_or_failed_download_is_retried_and_stored_whole(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, fault: str
) -> None:
    body = gzip.compress(TEXT.encode("cp1252") * 20)
    route = Route(body=body, headers={"Content-Type": "text/plain; charset=Cp1252"}, faults=[fault])
    result, locator = run(server, storage, options, route, compression="GZIP")
    assert stored(storage, result.manifest.location).decode() == TEXT * 20
    assert (locator.calls, result.manifest.attempts) == (2, 2)
    assert len([p for p in files_under(storage.root) if p.name.endswith(".part")]) == 0


def test_truncation_on_every_attempt_raises_and_stores_nothing(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    route = Route(body=gzip.compress(TEXT.encode()), faults=["truncate"] * 3)
    with pytest.raises(IncompleteDownload):
        run(server, storage, options, route)
    assert files_under(storage.root) == []


def test_truncated_gzip_stream_is_incomplete(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    body = gzip.compress(TEXT.encode())[:-20]  # the HTTP body is complete, the gzip stream is not
    with pytest.raises(IncompleteDownload, match="gzip stream ended early"):
        run(server, storage, options.model_copy(update={"max_attempts": 1}), Route(body=body))
    assert files_under(storage.root) == []


@pytest.mark.parametrize("where", [-8, -2, 20])  # CRC, ISIZE, deflate data
def test_corrupt_gzip_is_rejected(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, where: int
) -> None:
    body = bytearray(gzip.compress(TEXT.encode()))
    body[where] ^= 0x55
    with pytest.raises(DocumentRejected, match="corrupt"):
        run(server, storage, options, Route(body=bytes(body)))
    assert files_under(storage.root) == []


def test_decompression_bomb_is_rejected(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = compressor.compress(bytes(64 * 2**20)) + compressor.flush()  # 64 MiB of zeros in ~64 KiB
    small = options.model_copy(update={"max_decompressed_bytes": 10 * 2**20})
    with pytest.raises(DocumentRejected, match="decompression bomb"):
        run(server, storage, small, Route(body=bomb, headers={"Content-Type": "text/plain"}))
    assert files_under(storage.root) == []


@pytest.mark.parametrize(
    "allowed",
    [["*.amazonaws.com"], ["127.0.0.1"], ["https://127.0.0.1"], ["http://127.0.0.1:1"]],
)
def test_url_on_a_host_not_allowed_is_refused_before_any_request(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, allowed: list[str]
) -> None:
    with pytest.raises(DocumentRejected, match="not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"):
        run(server, storage, options.model_copy(update={"allowed_hosts": allowed}), Route(body=b"x"))
    assert server.log == []


def test_fatal_reports_documents_are_stored_apart(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    url = server.add("/err", Route(body=b'{"errorDetails":"no data"}', headers={"Content-Type": "application/json"}))
    req = request("ERR-1", processing_status="FATAL", report_id="R-9")
    result = retrieve_document(
        req, locate=Locator("ERR-1", [url]), report={"reportId": "R-9"}, storage=storage, options=options
    )
    location = Path(result.manifest.location)
    assert location.relative_to(storage.root).parts[:3] == ("_errors", "A1SELLER", "GET_X")
    assert location.name == "ERR-1.json"
    assert result.manifest.report == {"reportId": "R-9"} and result.manifest.processing_status == "FATAL"


def test_stored_manifest_makes_a_second_run_a_no_op(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    first, _ = run(server, storage, options, Route(body=b"a\n", headers={"Content-Type": "text/plain"}))
    second, locator = run(server, storage, options, Route(body=b"b\n"))
    assert second.already_stored
    assert second.manifest.model_dump(mode="json") == first.manifest.model_dump(mode="json")
    assert locator.calls == 0 and server.log == ["/DOC-1"]


def test_no_url_or_signature_in_logs_errors_or_results(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, caplog: pytest.LogCaptureFixture
) -> None:
    # What prepare_process() does for the logs when a retrieving process starts (the test must not
    # depend on another test having started a worker in this process before).
    install_log_filter()
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for document_id, route in [
            ("E1", Route(faults=["expired"] * 3)),
            ("E2", Route(body=b"x", faults=["truncate"] * 3)),
            ("E3", Route(body=b"\x1f\x8b\x08garbage")),
            ("OK", Route(body=gzip.compress(b"x\n"), faults=["5xx"])),
        ]:
            try:
                result, _ = run(server, storage, options, route, document_id=document_id)
                texts.append(json.dumps(result.summary()))
                texts.append(result.manifest.model_dump_json())
            except SpreportsError as exc:
                texts.append(str(exc))
                assert exc.__cause__ is None
    texts.append(caplog.text)
    assert "127.0.0.1" in caplog.text  # urllib3 did log its requests, redacted
    for text in texts:
        assert "SECRETSIGNATURE" not in text and "X-Amz" not in text
        assert f"{server.origin}/" not in text


def test_a_document_committed_by_a_run_that_stopped_before_its_manifest_is_kept_and_described(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions, caplog: pytest.LogCaptureFixture
) -> None:
    # The first run: its file committed, its manifest (the done-marker) never written.
    first, _ = run(server, storage, options, Route(body=TEXT.encode()), document_id="DOC-K")
    location = Path(first.manifest.location)
    for manifest_file in storage.root.rglob("*.manifest.json"):
        manifest_file.unlink()
    assert storage.find("A1SELLER", "DOC-K") is None
    inode = location.stat().st_ino
    with caplog.at_level(logging.INFO, logger="spreports.documents.pipeline"):
        second, _ = run(server, storage, options, Route(body=TEXT.encode()), document_id="DOC-K")
    assert second.manifest.location == str(location) and location.stat().st_ino == inode  # not rewritten
    assert second.manifest.sha256 == hashlib.sha256(location.read_bytes()).hexdigest()
    assert storage.find("A1SELLER", "DOC-K") == second.manifest
    messages = [record.getMessage() for record in caplog.records]
    assert any("already stored with the same bytes by another run" in m for m in messages), messages
    assert not any("downloaded from" in m for m in messages), messages
    assert not [p for p in files_under(storage.root) if p.name.endswith(".part")]


def test_a_restated_document_is_a_new_version_beside_the_one_it_supersedes(
    server: DocumentServer, storage: LocalStorage, options: RetrievalOptions
) -> None:
    plain = {"Content-Type": "text/plain; charset=UTF-8"}
    first_day = datetime(2026, 3, 10, 6, tzinfo=UTC)
    later = first_day + timedelta(days=3)
    first, _ = run(server, storage, options, Route(body=b"a\t1\n", headers=plain), now=lambda: first_day)
    restated, _ = run(server, storage, options, Route(body=b"a\t2\n", headers=plain), document_id="DOC-2",
                      now=lambda: later, supersedes="DOC-1")  # fmt: skip
    unrelated, _ = run(server, storage, options, Route(body=b"b\t1\n", headers=plain), document_id="DOC-3",
                       now=lambda: later)  # fmt: skip
    assert first.manifest.supersedes is None and unrelated.manifest.supersedes is None
    assert restated.manifest.supersedes == "DOC-1"
    assert storage.find("A1SELLER", "DOC-2") == restated.manifest  # the index copy says so too
    # Stored three days later, yet in the first version's folder; a document that restates nothing is not.
    assert Path(restated.manifest.location).parent == Path(first.manifest.location).parent
    assert Path(restated.manifest.location).parent.name == "2026-03-10"
    assert Path(unrelated.manifest.location).parent.name == "2026-03-13"
    assert (
        stored(storage, first.manifest.location) == b"a\t1\n"
        and stored(storage, restated.manifest.location) == b"a\t2\n"
    )
