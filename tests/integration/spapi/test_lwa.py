"""LWA tokens: caching (in process and fleet-wide), early refresh, one refresh for many callers,
the expired-token retry, and every class of LWA error."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import redis

from spreports.errors import AuthenticationError, InvalidRequest, RateLimited, ServiceUnavailable
from spreports.settings import Settings
from spreports.spapi import SpapiClient
from spreports.spapi.sealing import TokenSealer
from spreports.spapi.tokens import PROCESS_TOKENS, FetchedToken, LocalTokens, SharedTokenCache
from tests.integration.spapi.conftest import CLIENT_SECRET, FAST_RETRY, REFRESH_TOKEN, SELLER, make_settings
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon

REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20Z"}
REPORT_PATH = "/reports/2021-06-30/reports/R1"
EXPIRED = Answer(
    403,
    {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                 "details": "The access token you provided has expired."}]},
)  # fmt: skip


def test_token_is_fetched_once_and_shared_through_redis(
    fake_amazon: FakeAmazon, spapi_settings: Settings, redis_client: redis.Redis
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    first = SpapiClient.for_seller(spapi_settings, SELLER, redis=redis_client)
    for _ in range(3):
        first.get_report("R1")
    PROCESS_TOKENS.clear()  # as if the next client were in another process: only Redis has the token
    second = SpapiClient.for_seller(spapi_settings, SELLER, redis=redis_client)
    second.get_report("R1")
    tokens = fake_amazon.token_requests()
    assert len(tokens) == 1
    assert tokens[0].form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": CLIENT_SECRET,
    }
    assert {s.headers["x-amz-access-token"] for s in fake_amazon.api_requests()} == {"Atza|seller-1"}


def test_grantless_uses_client_credentials_with_the_notifications_scope(
    fake_amazon: FakeAmazon, grantless_client: SpapiClient
) -> None:
    fake_amazon.on("GET", "/notifications/v1/destinations", Answer(200, {"payload": []}))
    assert grantless_client.get_destinations() == []
    (request,) = fake_amazon.token_requests()
    assert request.form["grant_type"] == "client_credentials"
    assert request.form["scope"] == "sellingpartnerapi::notifications"
    assert "refresh_token" not in request.form


def test_token_is_stored_for_its_lifetime_less_the_margin(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, redis_client: redis.Redis
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    seller_client.get_report("R1")
    (key,) = [k for k in redis_client.keys("spreports:token:lwa:*") if not k.endswith(b":lock")]
    assert 3480_000 < redis_client.pttl(key) <= 3540_000
    assert REFRESH_TOKEN.encode() not in key


def test_token_is_refreshed_early(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    # A 3 s token is stale a tenth of its life early (the 60 s margin is longer than that): after 2.7 s
    # of use, the next call refreshes.
    fake_amazon.token_lifetime = 3
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    seller_client.get_report("R1")
    deadline = time.monotonic() + 30
    while len(fake_amazon.token_requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        seller_client.get_report("R1")
    assert len(fake_amazon.token_requests()) == 2
    assert fake_amazon.api_requests()[-1].headers["x-amz-access-token"] == "Atza|seller-2"


def test_a_short_lived_token_is_reused_for_most_of_its_life(
    fake_amazon: FakeAmazon, seller_client: SpapiClient
) -> None:
    # A minute-long token (Amazon's hour on a simulator at 60x) would be stale at once with a flat 60 s
    # margin, and fetched again on every call; a tenth of its life early, it serves 54 s of calls.
    fake_amazon.token_lifetime = 60
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    seller_client.get_report("R1")
    seller_client.get_report("R1")
    assert len(fake_amazon.token_requests()) == 1


SEALER = TokenSealer.derived_from("a client secret")


def test_many_threads_refresh_once(redis_client: redis.Redis, redis_url: str) -> None:
    calls = []

    def fetch() -> FetchedToken:
        calls.append(1)
        time.sleep(0.5)  # a slow token endpoint widens the race
        return FetchedToken("Atza|shared", 3600)

    # Separate caches with their own in-process stores (as in separate processes), so only the Redis
    # lock can serialise them.
    caches = [
        SharedTokenCache(redis.Redis.from_url(redis_url), "lwa:threads", fetch, sealer=SEALER, local=LocalTokens())
        for _ in range(12)
    ]
    results: list[str] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.token())) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == ["Atza|shared"] * 12
    assert len(calls) == 1


def _call_get_report(redis_url: str, endpoint: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    settings = make_settings(redis_url, endpoint)
    client = SpapiClient.for_seller(settings, SELLER, redis=redis.Redis.from_url(redis_url))
    barrier.wait(timeout=60)
    return client.get_report("R1").report_id


def test_many_processes_refresh_once(fake_amazon: FakeAmazon, redis_client: redis.Redis, redis_url: str) -> None:
    fake_amazon.token_delay = 0.5
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    context = multiprocessing.get_context("spawn")
    workers = 4
    with context.Manager() as manager:
        barrier = manager.Barrier(workers)
        with context.Pool(workers) as pool:
            results = pool.starmap(_call_get_report, [(redis_url, fake_amazon.url, barrier)] * workers)
    assert results == ["R1"] * workers
    assert len(fake_amazon.token_requests()) == 1
    assert len(fake_amazon.api_requests()) == workers


def test_expired_token_is_refreshed_once_and_the_call_retried(
    fake_amazon: FakeAmazon, seller_client: SpapiClient
) -> None:
    fake_amazon.on("GET", REPORT_PATH, EXPIRED, Answer(200, REPORT))
    assert seller_client.get_report("R1").report_id == "R1"
    assert len(fake_amazon.token_requests()) == 2
    assert [s.headers["x-amz-access-token"] for s in fake_amazon.api_requests()] == ["Atza|seller-1", "Atza|seller-2"]


def test_expired_token_twice_raises(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.on("GET", REPORT_PATH, EXPIRED)
    with pytest.raises(InvalidRequest) as caught:
        seller_client.get_report("R1")
    assert caught.value.status == 403
    assert len(fake_amazon.api_requests()) == 2
    assert len(fake_amazon.token_requests()) == 2


def test_plain_403_is_not_a_token_refresh(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    denied = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""}]}
    fake_amazon.on("GET", REPORT_PATH, Answer(403, denied))
    with pytest.raises(InvalidRequest):
        seller_client.get_report("R1")
    assert len(fake_amazon.token_requests()) == 1
    assert len(fake_amazon.api_requests()) == 1


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (400, "invalid_grant", AuthenticationError),
        (401, "invalid_client", AuthenticationError),
        (400, "unauthorized_client", AuthenticationError),
        (400, "access_denied", AuthenticationError),
        (400, "invalid_scope", AuthenticationError),
        (400, "invalid_request", InvalidRequest),
        (500, "server_error", ServiceUnavailable),
        (503, "temporarily_unavailable", ServiceUnavailable),
        (400, "temporarily_unavailable", ServiceUnavailable),
        (429, "too_many_requests", RateLimited),
    ],
)
def test_lwa_errors_map_to_the_tree(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, status: int, error: str, expected: type[Exception]
) -> None:
    description = f"The request has an invalid parameter : {REFRESH_TOKEN}"  # even an echoed secret is scrubbed
    fake_amazon.token_answers = [Answer(status, {"error": error, "error_description": description})]
    with pytest.raises(expected) as caught:
        seller_client.get_report("R1")
    text = str(caught.value)
    assert SELLER in text
    assert error in text or expected is RateLimited
    assert REFRESH_TOKEN not in text and CLIENT_SECRET not in text
    assert fake_amazon.api_requests() == []


def test_lwa_unreachable_is_transient(redis_url: str, redis_client: redis.Redis) -> None:
    from tests.servers import free_port

    settings = make_settings(redis_url, f"http://127.0.0.1:{free_port()}")
    client = SpapiClient.for_seller(settings, SELLER, redis=redis_client, retry=FAST_RETRY)
    with pytest.raises(ServiceUnavailable) as caught:
        client.get_report("R1")
    assert SELLER in str(caught.value)


def test_an_unknown_seller_is_served_with_the_only_credentials(
    spapi_settings: Settings, redis_client: redis.Redis
) -> None:
    # One set of credentials configured: every account uses it (spreports.accounts); with several, an
    # unknown seller is an InvalidRequest naming it (tests/unit/test_accounts.py).
    assert len(spapi_settings.sellers()) == 1
    client = SpapiClient.for_seller(spapi_settings, "A9UNKNOWN", redis=redis_client)
    assert client.seller_id == next(iter(spapi_settings.sellers()))


def test_missing_client_credentials(redis_url: str, redis_client: redis.Redis) -> None:
    settings = Settings(broker_url=redis_url, seller_id=SELLER, lwa={"refresh_token": REFRESH_TOKEN})
    with pytest.raises(AuthenticationError, match=SELLER) as caught:
        SpapiClient.for_seller(settings, SELLER, redis=redis_client)
    assert REFRESH_TOKEN not in str(caught.value)
    with pytest.raises(AuthenticationError, match="CLIENT_ID"):
        SpapiClient.grantless(settings, redis=redis_client)
