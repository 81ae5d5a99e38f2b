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
        # Restricted Data Tokens, in any Atz<kind>| form.
        ("x-amz-rdt Atz.sprdt|IwEBIRdtSecretValue", "IwEBIRdtSecretValue"),
        ("token=(Atz.sprdt|IwEBIRdt2)", "IwEBIRdt2"),
        # requests shows only the path of the failed URL, with its signed query string.
        (
            "HTTPSConnectionPool(host='b.s3.amazonaws.com', port=443): Max retries exceeded with url: "
            "/doc/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260101 (Caused by x)",
            "AKIAEXAMPLE",
        ),
        ("url: '/k?X-Amz-Signature=sig0123abc'", "sig0123abc"),
        ("GET /k?a=1&X-Amz-Security-Token=sessiontok HTTP/1.1", "sessiontok"),
        # URL userinfo.
        ("Error connecting to redis://:hunter2@redis.internal:6379/0", "hunter2"),
        ("rediss://default:p4ss@word@host:6380/1 refused", "p4ss"),
        # A bare LWA client secret.
        ("LWA said no for amzn1.oa2-cs.v1.0123456789abcdef", "0123456789abcdef"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "stored GET_MERCHANT_LISTINGS_ALL_DATA document amzn1.tortuga.3.abc in 2.1 s from host s3.amazonaws.com",
        "Redis at redis://127.0.0.1:6379/0 is up; http://host:8080/path ok; mail ops@example.com",
        "client amzn1.application-oa2-client.abc asked: why? report GET_X done? yes",
    ],
)
def test_plain_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_userinfo_keeps_scheme_user_and_host() -> None:
    assert redact("redis://default:pw@host:6379/0") == "redis://default:[redacted]@host:6379/0"


def test_long_text_without_secrets_is_cheap() -> None:
    # Patterns start only at word starts, so a huge token-free line is not rescanned per character.
    text = "a" * 100_000 + " " + "x?" * 50_000 + " " + "b:" * 50_000
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
