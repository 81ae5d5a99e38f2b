"""The document URL checked is the URL connected to: one parser, and no host, port or character trick passes."""

from __future__ import annotations

import pytest

from spreports.documents import check_allowed
from spreports.errors import DocumentRejected

ALLOWED = ["*.amazonaws.com", "*.cloudfront.net", "http://127.0.0.1:8123"]
SIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123"


@pytest.mark.parametrize(
    "url",
    [
        f"https://tortuga-prod-na.s3-external-1.amazonaws.com/doc.txt?{SIGNED}",
        f"https://d34o8swod1owfl.cloudfront.net/doc.txt?{SIGNED}",
        f"https://s3.amazonaws.com:443/doc.txt?{SIGNED}",
        "http://127.0.0.1:8123/documents/DOC-1?X-Amz-Signature=x",
    ],
)
def test_pre_signed_urls_of_allowed_hosts_pass_unchanged(url: str) -> None:
    assert check_allowed(url, ALLOWED) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # urllib3 (what requests connects with) reads the backslash as the start of the path: host 127.0.0.1.
        ("https://127.0.0.1\\.amazonaws.com/x", "characters a URL may not"),
        ("https://s3.amazonaws.com\\@evil.example/x", "characters a URL may not"),
        ("https://\uff533.amazonaws.com/x", "characters a URL may not"),  # a fullwidth s: refused, not retried
        ("https://s3.amazonaws.com/x y", "characters a URL may not"),
        ("https://s3.amazonaws.com/x\n", "characters a URL may not"),
        ("https://user:pw@s3.amazonaws.com/x", "carries credentials"),
        ("https://s3.amazonaws.com:6379/x", "port 6379"),
        ("https://s3.amazonaws.com:80/x", "port 80"),
        ("http://s3.amazonaws.com/x", "http on host 's3.amazonaws.com'"),
        ("https://amazonaws.com.evil.example/x", "not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"),
        ("https://127.0.0.1:8123/x", "not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"),  # the origin's scheme is http
        ("http://127.0.0.1:8124/x", "port 8124"),
        ("https://[::1/x", "malformed"),
    ],
)
def test_tricks_are_refused_for_good(url: str, reason: str) -> None:
    with pytest.raises(DocumentRejected, match=reason) as refused:
        check_allowed(url, ALLOWED)
    assert "?" not in str(refused.value) and "/x" not in str(refused.value)
