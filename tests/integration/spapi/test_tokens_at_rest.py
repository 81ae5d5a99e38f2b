"""Tokens at rest: Redis holds the cached LWA tokens sealed, and keys rotate without a failed call."""

from __future__ import annotations

import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr

from spreports.errors import SettingsError
from spreports.settings import Settings
from spreports.spapi import SpapiClient
from spreports.spapi.tokens import PROCESS_TOKENS
from tests.integration.spapi.conftest import CLIENT_SECRET, REFRESH_TOKEN, SELLER, make_settings
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon

REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20+00:00"}
REPORT_PATH = "/reports/2021-06-30/reports/R1"


def client(settings: Settings, redis_client: redis.Redis) -> SpapiClient:
    # Each client as a new process would see it: nothing cached in memory, only what Redis holds.
    PROCESS_TOKENS.clear()
    return SpapiClient.for_seller(settings, SELLER, redis=redis_client)


def everything_in(redis_client: redis.Redis) -> bytes:
    """Every key and string value of the test's Redis database, as one blob."""
    parts = []
    for key in redis_client.scan_iter(count=1000):
        parts.append(key)
        if redis_client.type(key) == b"string":
            parts.append(redis_client.get(key) or b"")
    return b"\n".join(parts)


def test_redis_holds_no_token_and_no_secret_in_the_clear(
    fake_amazon: FakeAmazon, spapi_settings: Settings, redis_client: redis.Redis
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    client(spapi_settings, redis_client).get_report("R1")
    token = fake_amazon.api_requests()[0].headers["x-amz-access-token"]
    stored = everything_in(redis_client)
    assert any(key.startswith(b"spreports:token:lwa:") for key in redis_client.scan_iter())
    for secret in (token, REFRESH_TOKEN, CLIENT_SECRET, "Atza|"):
        assert secret.encode() not in stored
    # A second process uses the sealed entry: no second token request.
    client(spapi_settings, redis_client).get_report("R1")
    assert len(fake_amazon.token_requests()) == 1


def test_keys_rotate_without_downtime(fake_amazon: FakeAmazon, redis_url: str, redis_client: redis.Redis) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT))
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = make_settings(redis_url, fake_amazon.url)

    def with_keys(*keys: str) -> Settings:
        return base.model_copy(update={"token_keys": [SecretStr(key) for key in keys]})

    client(with_keys(old), redis_client).get_report("R1")
    client(with_keys(new, old), redis_client).get_report("R1")  # the new key seals, the old one still opens
    assert len(fake_amazon.token_requests()) == 1
    client(with_keys(new), redis_client).get_report("R1")  # old key gone: the entry is fetched again, no error
    assert len(fake_amazon.token_requests()) == 2
    client(with_keys(new), redis_client).get_report("R1")
    assert len(fake_amazon.token_requests()) == 2


def test_a_bad_key_is_a_settings_error_that_shows_no_key(
    fake_amazon: FakeAmazon, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(redis_url, fake_amazon.url).model_copy(
        update={"token_keys": [SecretStr("not-a-fernet-key-xyz")]}
    )
    with pytest.raises(SettingsError, match="SPREPORTS_TOKEN_KEYS: each key must be 32 url-safe base64") as raised:
        client(settings, redis_client)
    assert "not-a-fernet-key-xyz" not in str(raised.value)
