"""A document URL on an allowed host whose name DNS cannot carry is refused for good, in one line, before
any connection (urllib3 would raise LocationParseError as it connects, outside requests' exceptions)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import urllib3.exceptions

from spreports.documents import check_allowed
from spreports.documents.fetch import open_download
from spreports.errors import DocumentRejected

ALLOWED = ["*.amazonaws.com", "*.cloudfront.net", "http://127.0.0.1:8123"]
QUERY = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123"
S3 = "s3-external-1.amazonaws.com"
LONG = f"{'b' * 63}.{'c' * 63}.{'d' * 63}."  # three full labels, then one sized to reach a name length


def name_of(length: int) -> str:
    return f"{LONG}{'e' * (length - len(LONG) - len(S3) - 1)}.{S3}"


# (host, refused): every host matches an allowed pattern, so only the DNS name decides.
HOSTS = [
    (f"tortuga..{S3}", True),  # an empty label
    (f".{S3}", True),
    (f"a.{S3}..", True),
    (f"{'b' * 64}.{S3}", True),  # one character over a label's 63
    (f"{'b' * 63}.{S3}", False),  # the longest label
    (f"b.{S3}", False),  # the shortest
    (name_of(254), True),  # over DNS's 253 characters
    (name_of(253), False),  # the longest name
    (f"-tortuga.{S3}", True),  # a hyphen at either end of a label
    (f"tortuga-.{S3}", True),
    (f"tortuga-prod-na.{S3}", False),
    (f"tortuga_prod.{S3}", False),  # underscores resolve (legacy bucket names)
    (f"tortuga=prod.{S3}", True),  # a character no label has
    (f"{S3}.", False),  # the root's empty label: allowed here, refused as not on the allowed hosts
]


@pytest.mark.parametrize(("host", "refused"), HOSTS, ids=[f"{len(h)}:{h[:24]}" for h, _ in HOSTS])
def test_a_host_dns_cannot_carry_is_refused_in_one_line(host: str, refused: bool) -> None:
    url = f"https://{host}/amzn1.spdoc.1.4.na.DOC{QUERY}"
    if not refused:
        if host.endswith("."):
            with pytest.raises(DocumentRejected, match="not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"):
                check_allowed(url, ALLOWED)
        else:
            assert check_allowed(url, ALLOWED) == url
        return
    with pytest.raises(DocumentRejected, match="is not a DNS name") as caught:
        check_allowed(url, ALLOWED)
    message = str(caught.value)
    assert "\n" not in message and "?" not in message and "Signature" not in message and "spdoc" not in message


class RaisingSession(requests.Session):
    """The download seam: raises what urllib3 raises for a bad label as it connects (no socket opened)."""

    def get(self, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise urllib3.exceptions.LocationParseError(f"{url}, label empty or too long")


def test_the_download_turns_urllib3s_late_refusal_into_a_permanent_error_without_the_url() -> None:
    url = f"https://tortuga..{S3}/doc{QUERY}"
    opened = open_download(RaisingSession(), url, connect_timeout=1, read_timeout=1)
    with pytest.raises(DocumentRejected, match="cannot be fetched") as caught, opened:
        pass
    assert "Signature" not in str(caught.value) and caught.value.__cause__ is None
