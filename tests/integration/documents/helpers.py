"""Checks shared by the document integration tests."""

from __future__ import annotations

import codecs
import hashlib
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
