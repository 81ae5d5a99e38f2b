"""Checks shared by the document integration tests."""

from __future__ import annotations

import codecs
import hashlib
import logging
import threading
from pathlib import Path

from spreports.simulator import Simulator
from spreports.storage import Manifest

CODECS = {"UTF-8": "utf-8-sig", "Cp1252": "cp1252", "windows-31j": "cp932", "Shift_JIS": "cp932"}


def expected_utf8(sim: Simulator, document_id: str, charset: str) -> bytes:
    """The simulator's document as we must store it: decoded from its charset, BOM dropped, UTF-8."""
    decoder = codecs.getincrementaldecoder(CODECS[charset])("strict")
    parts = [decoder.decode(chunk) for chunk in sim.document_content(document_id)]
    parts.append(decoder.decode(b"", True))
    return "".join(parts).encode("utf-8")


def check_stored(manifest: Manifest, expected: bytes) -> None:
    """The stored file is exactly ``expected`` and the manifest's size and sha256 say so."""
    data = Path(manifest.location).read_bytes()
    assert data == expected
    assert manifest.bytes_out == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()


def downloads(sim: Simulator) -> int:
    """How many times the simulator was asked for a document body."""
    return len(sim.requests("downloadDocument"))


class TaskLog(logging.Handler):
    """Counts the task module's log lines containing a phrase (the worker runs in threads here)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            self.messages.append(record.getMessage())

    def count(self, phrase: str) -> int:
        with self.guard:
            return sum(phrase in message for message in self.messages)
