"""Credentials never leave for another host: SP-API and LWA redirects are errors, not followed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spreports.errors import UnexpectedResponse
from spreports.spapi import SpapiClient
from tests.integration.spapi.conftest import CLIENT_SECRET, REFRESH_TOKEN
from tests.integration.spapi.fake_amazon import TOKEN_PATH, Answer, FakeAmazon

REPORT_PATH = "/reports/2021-06-30/reports/R1"


@pytest.fixture
def elsewhere() -> Iterator[FakeAmazon]:
    """Another host, which records whatever reaches it."""
    other = FakeAmazon()
    other.start()
    yield other
    other.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_an_sp_api_redirect_is_an_error_and_the_token_stays(
    fake_amazon: FakeAmazon, elsewhere: FakeAmazon, seller_client: SpapiClient, status: int
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(status, headers={"Location": f"{elsewhere.url}{REPORT_PATH}"}))
    with pytest.raises(UnexpectedResponse, match=f"HTTP {status}, a redirect; not followed") as raised:
        seller_client.get_report("R1")
    assert raised.value.status == status
    assert elsewhere.seen == []
    assert len(fake_amazon.api_requests()) == 1  # refused at once, not retried
    token = fake_amazon.api_requests()[0].headers["x-amz-access-token"]
    assert token not in str(raised.value)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_an_lwa_redirect_is_an_error_and_the_secrets_stay(
    fake_amazon: FakeAmazon, elsewhere: FakeAmazon, seller_client: SpapiClient, status: int
) -> None:
    fake_amazon.token_answers = [Answer(status, headers={"Location": f"{elsewhere.url}{TOKEN_PATH}"})]
    with pytest.raises(UnexpectedResponse, match=f"LWA answered HTTP {status}") as raised:
        seller_client.get_report("R1")
    assert elsewhere.seen == []
    assert fake_amazon.api_requests() == []
    for secret in (CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in str(raised.value)
