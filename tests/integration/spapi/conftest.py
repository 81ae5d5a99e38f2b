"""Fixtures for the SP-API client's tests: a fake Amazon on loopback, settings and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from spreports.settings import Settings
from spreports.spapi import RetryPolicy, SpapiClient
from tests.integration.spapi.fake_amazon import TOKEN_PATH, FakeAmazon

SELLER = "A1SELLER"
CLIENT_ID = "amzn1.application-oa2-client.test"
CLIENT_SECRET = "amzn1.oa2-cs.v1.TOP-SECRET-CLIENT"
REFRESH_TOKEN = "Atzr|SECRET-REFRESH-TOKEN"
# Retries in tests: many attempts, no real sleeping (tests swap the transport's sleep).
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=30.0)


@pytest.fixture
def fake_amazon() -> Iterator[FakeAmazon]:
    """A started fake Amazon (LWA + canned SP-API answers)."""
    fake = FakeAmazon()
    fake.start()
    yield fake
    fake.stop()


def make_settings(redis_url: str, endpoint: str) -> Settings:
    """Settings for one seller whose LWA and SP-API are ``endpoint``."""
    return Settings(
        broker_url=redis_url,
        seller_id=SELLER,
        lwa={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_url": endpoint + TOKEN_PATH,
        },
        spapi={"endpoint": endpoint},
    )


@pytest.fixture
def spapi_settings(redis_url: str, fake_amazon: FakeAmazon) -> Settings:
    return make_settings(redis_url, fake_amazon.url)


@pytest.fixture
def seller_client(spapi_settings: Settings, redis_client: redis.Redis) -> SpapiClient:
    client = SpapiClient.for_seller(spapi_settings, SELLER, redis=redis_client, retry=FAST_RETRY)
    client.transport.sleep = lambda seconds: None
    return client


@pytest.fixture
def grantless_client(spapi_settings: Settings, redis_client: redis.Redis) -> SpapiClient:
    client = SpapiClient.grantless(spapi_settings, redis=redis_client, retry=FAST_RETRY)
    client.transport.sleep = lambda seconds: None
    return client
