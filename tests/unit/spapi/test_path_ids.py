"""Ids go into SP-API paths only in the shape of Amazon's ids: ``..`` never reaches another path with the
seller's token, and a refused id is a permanent error naming the field, before any request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
import requests

from spreports.errors import InvalidRequest
from spreports.settings import Settings
from spreports.spapi import SpapiClient

TOKEN_URL = "https://lwa.test/auth/o2/token"


class Sent(Exception):
    """What the fake session raises: the call got as far as the network."""


class RecordingSession(requests.Session):
    """The HTTP seam: records each request, answers LWA with a token and sends nothing anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(url))
        if str(url) != TOKEN_URL:
            raise Sent(str(url))
        response = requests.Response()
        response.status_code, response._content = 200, b'{"access_token": "Atza|x", "expires_in": 3600}'
        return response


CALLS: dict[str, Callable[[SpapiClient, str], object]] = {
    "getReport": lambda client, value: client.get_report(value),
    "cancelReport": lambda client, value: client.cancel_report(value),
    "getReportDocument": lambda client, value: client.get_report_document(value),
    "getReportDocument (restricted)": lambda client, value: client.get_report_document(
        value, "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
    ),
    "getReportSchedule": lambda client, value: client.get_report_schedule(value),
    "cancelReportSchedule": lambda client, value: client.cancel_report_schedule(value),
    "getSubscription": lambda client, value: client.get_subscription(value),
    "deleteSubscriptionById": lambda client, value: client.delete_subscription_by_id(
        "REPORT_PROCESSING_FINISHED", value
    ),
    "deleteDestination": lambda client, value: client.delete_destination(value),
}

REFUSED = ["..", ".", "../reports", "a/b", "a/../b", "%2e%2e", "-a", "_a", "a b", "a\n", "a?x=1", "a#b", "ü", "a" * 201]
ACCEPTED = ["amzn1.spdoc.1.4.na.0356cf79-b8b0-4226-b4b9-0ee058ea5760.T1.1", "50013018012", "ID323", "a..", "a" * 200]


def client_and_session() -> tuple[SpapiClient, RecordingSession]:
    settings = Settings(
        seller_id="A1SELLER",
        lwa={"client_id": "amzn1.application-oa2-client.test", "client_secret": "secret",
             "refresh_token": "Atzr|refresh", "token_url": TOKEN_URL},
        spapi={"endpoint": "https://spapi.test"},
    )  # fmt: skip
    session = RecordingSession()
    return SpapiClient.for_seller(settings, "A1SELLER", redis=fakeredis.FakeRedis(), session=session), session


@pytest.mark.parametrize("operation", list(CALLS))
@pytest.mark.parametrize("value", REFUSED, ids=[repr(v)[:12] for v in REFUSED])
def test_an_id_not_in_amazons_shape_is_refused_before_any_request(operation: str, value: str) -> None:
    client, session = client_and_session()
    with pytest.raises(InvalidRequest, match="is not an Amazon id"):
        CALLS[operation](client, value)
    assert session.urls == []  # not even a token was asked for


@pytest.mark.parametrize("value", ACCEPTED, ids=[v[:12] for v in ACCEPTED])
def test_amazons_ids_reach_their_own_path(value: str) -> None:
    client, session = client_and_session()
    with pytest.raises(Sent):
        client.get_report_document(value)
    path = f"https://spapi.test/reports/2021-06-30/documents/{value}"
    assert session.urls[-1] == path and set(session.urls) <= {TOKEN_URL, path}  # a token cached earlier is reused
