"""The FATAL reason reader on whatever Amazon puts in an error document: it never raises, and its answer
is bounded (a reason of at most MAX_REASON characters, None, or "unreadable error document (...)")."""

from __future__ import annotations

import codecs
import hashlib
import json

import pytest

from spreports.reports.fatal_ledger import CAPTURE_BYTES, MAX_JSON_DEPTH, MAX_REASON, UNREADABLE, error_reason


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def details(value: bytes) -> bytes:
    return b'{"errorDetails": ' + value + b"}"


REASON = "Ungültiger Zeitraum €"

DOCUMENTS = [
    # Nesting: Python's parser recurses per level (a 10 KB document raised RecursionError).
    ("nested 10 KB", nested(5_000), f"{UNREADABLE} (JSON nested too deeply)"),
    ("nested 64 KB", nested(CAPTURE_BYTES // 2), f"{UNREADABLE} (JSON nested too deeply)"),
    ("objects nested 10 KB", b'{"a":' * 2_000 + b"1" + b"}" * 2_000, f"{UNREADABLE} (JSON nested too deeply)"),
    ("nested errorDetails", details(nested(5_000)), f"{UNREADABLE} (JSON nested too deeply)"),
    ("a flat reason before deep JSON", b'{"errorDetails": "Too large", "x": ' + nested(5_000) + b"}", "Too large"),
    (
        "depth at the bound",
        details(nested(MAX_JSON_DEPTH - 1)),
        "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1),
    ),
    ("depth past the bound", details(nested(MAX_JSON_DEPTH)), f"{UNREADABLE} (JSON nested too deeply)"),
    ("brackets inside strings do not count", details(json.dumps("[" * 5_000).encode()), "[" * (MAX_REASON - 1) + "…"),
    # Charsets: by BOM, UTF-16 without one, and Cp1252 (Amazon's other usual charset).
    (
        "UTF-16 LE with BOM",
        codecs.BOM_UTF16_LE + details(json.dumps(REASON).encode()).decode().encode("utf-16-le"),
        REASON,
    ),
    (
        "UTF-16 BE with BOM",
        codecs.BOM_UTF16_BE + details(json.dumps(REASON).encode()).decode().encode("utf-16-be"),
        REASON,
    ),
    (
        "UTF-16 LE without BOM",
        details(json.dumps(REASON, ensure_ascii=False).encode()).decode().encode("utf-16-le"),
        REASON,
    ),
    (
        "UTF-32 with BOM",
        codecs.BOM_UTF32_LE + details(json.dumps(REASON).encode()).decode().encode("utf-32-le"),
        REASON,
    ),
    ("Cp1252", details(json.dumps(REASON, ensure_ascii=False).encode("utf-8")).decode().encode("cp1252"), REASON),
    # Binary: no reason in it.
    ("binary", bytes(range(256)) * 64, f"{UNREADABLE} (binary)"),
    ("NUL bytes", b"\x00" * 4096, f"{UNREADABLE} (binary)"),
    ("random bytes", b"".join(hashlib.sha256(bytes([n])).digest() for n in range(128)), f"{UNREADABLE} (binary)"),
]


@pytest.mark.parametrize(("document", "reason"), [d[1:] for d in DOCUMENTS], ids=[d[0] for d in DOCUMENTS])
def test_every_error_document_gives_a_bounded_reason(document: bytes, reason: str | None) -> None:
    assert error_reason(document) == reason


@pytest.mark.parametrize(
    "document",
    [
        nested(10**6),  # beyond the capture: only its first CAPTURE_BYTES are read
        b'{"errorDetails": "' + b"x" * 10**7 + b'"}',
        b'"' + b'\\"' * 40_000,  # escapes without an end: the scan stays linear
        b'{"errorDetails": "bad escape \\x"' + nested(100) + b"}",
        details(b"1" * 5_000),  # an integer longer than Python parses
        bytes(range(256)) * 1000,
    ],
    ids=[
        "nested 2 MB",
        "10 MB reason",
        "unterminated escapes",
        "bad escape after deep JSON",
        "huge integer",
        "binary 256 KB",
    ],
)
def test_a_huge_or_hostile_document_never_raises_and_stays_bounded(document: bytes) -> None:
    reason = error_reason(document)
    assert reason is not None and len(reason) <= MAX_REASON
