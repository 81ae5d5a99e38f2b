"""Fixtures for the pipeline's unit tests: a local document server, a locator, local storage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from spreports.documents import RetrievalOptions
from spreports.storage import LocalStorage
from tests.unit.documents.httpserver import DocumentServer


@pytest.fixture
def server() -> Iterator[DocumentServer]:
    """A document server on loopback for one test."""
    srv = DocumentServer()
    yield srv
    srv.stop()


@dataclass
class Located:
    """A getReportDocument answer."""

    report_document_id: str
    url: SecretStr
    compression_algorithm: str | None = None


class Locator:
    """Answers getReportDocument with the given URLs in turn (the last one repeats); counts calls."""

    def __init__(self, document_id: str, urls: list[str], compression: str | None = None) -> None:
        self.document_id = document_id
        self.urls = urls
        self.compression = compression
        self.calls = 0

    def __call__(self) -> Located:
        url = self.urls[min(self.calls, len(self.urls) - 1)]
        self.calls += 1
        return Located(self.document_id, SecretStr(url), self.compression)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    """Local storage under tmp_path/reports."""
    return LocalStorage(tmp_path / "reports")


@pytest.fixture
def options(server: DocumentServer) -> RetrievalOptions:
    """Options allowing exactly the local server's origin, with quick timeouts."""
    return RetrievalOptions(allowed_hosts=["*.amazonaws.com", server.origin], read_timeout=10, connect_timeout=5)
