"""Credentials and signed URLs never survive into a log line."""

from __future__ import annotations

import logging

import pytest

from spreports.redaction import RedactingFilter, redact

SIGNED = "https://tortuga-prod-na.s3.amazonaws.com/doc?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc123"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token Atza|IwEBIPkA-secret-access", "IwEBIPkA"),
        ("refresh Atzr|IwEBIAbc-secret-refresh", "IwEBIAbc"),
        (f"GET {SIGNED} failed", "X-Amz-Signature"),
        ("client_secret=amzn1.oa2-cs.v1.deadbeef&grant_type=x", "deadbeef"),
        ('{"access_token": "opaque-token-value"}', "opaque-token-value"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_plain_text_is_untouched() -> None:
    text = "stored GET_MERCHANT_LISTINGS_ALL_DATA document amzn1.tortuga.3.abc in 2.1 s from host s3.amazonaws.com"
    assert redact(text) == text


def test_filter_rewrites_messages_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "download of %s failed", (SIGNED,), None)
    try:
        raise ValueError(f"bad url {SIGNED}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "X-Amz-Signature" not in formatted
    assert "[redacted]" in formatted
