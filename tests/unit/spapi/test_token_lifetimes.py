"""Whatever ``expires_in`` a token endpoint answers, the token is used and cached for a bounded time:
never an overflow, never a Redis error passed off as "Redis unavailable", never cached forever."""

from __future__ import annotations

import json
import logging
from typing import Any

import fakeredis
import pytest
import requests
from pydantic import SecretStr

from spreports.spapi.lwa import LwaClient, LwaCredentials
from spreports.spapi.models import CreateRestrictedDataTokenResponse
from spreports.spapi.sealing import TokenSealer
from spreports.spapi.tokens import (
    DEFAULT_LIFETIME_SECONDS,
    MAX_LIFETIME_SECONDS,
    MIN_LIFETIME_SECONDS,
    FetchedToken,
    LocalTokens,
    SharedTokenCache,
    refresh_margin,
)

SEALER = TokenSealer.derived_from("test-secret")
ANOMALY = None

# (the JSON text of expires_in, the lifetime the token is cached for); ANOMALY: logged, Amazon's hour used.
EXPIRES_IN = [
    ("Infinity", ANOMALY),
    ("-Infinity", ANOMALY),
    ("NaN", ANOMALY),
    ("1e308", ANOMALY),
    ("1e309", ANOMALY),  # parsed as infinity
    ("1" + "0" * 400, ANOMALY),  # an integer beyond any float
    ("0.001", ANOMALY),
    ("0", ANOMALY),
    ("-1", ANOMALY),
    ("0.999", ANOMALY),
    ("1", 1.0),  # the shortest plausible: a simulator's accelerated hour
    ("60", 60.0),
    ("3600", 3600.0),
    ("86400", MAX_LIFETIME_SECONDS),
    ("86401", ANOMALY),
    ('"3600"', ANOMALY),  # a string is not a number of seconds
    ("null", ANOMALY),
    ("true", ANOMALY),
]


class OneAnswerSession(requests.Session):
    """The token endpoint's seam: every POST gets the same 200 body (no socket)."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.body = body
        self.posts = 0

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.posts += 1
        response = requests.Response()
        response.status_code = 200
        response._content = self.body.encode()
        response.headers["Content-Type"] = "application/json"
        return response


def lwa_cache(expires_in: str) -> tuple[SharedTokenCache, OneAnswerSession, fakeredis.FakeRedis]:
    body = '{"access_token": "Atza|odd-lifetime", "token_type": "bearer", "expires_in": ' + expires_in + "}"
    session = OneAnswerSession(body)
    credentials = LwaCredentials("amzn1.application-oa2-client.test", SecretStr("secret"), "https://lwa.test/o2/token")
    lwa = LwaClient(credentials, session, (1.0, 1.0))
    client = fakeredis.FakeRedis()

    def fetch() -> FetchedToken:
        return lwa.refresh_token_grant(SecretStr("Atzr|refresh"), who="seller A1")

    cache = SharedTokenCache(client, "lwa:odd", fetch, sealer=SEALER, local=LocalTokens())
    return cache, session, client


@pytest.mark.parametrize(("expires_in", "lifetime"), EXPIRES_IN, ids=[e[0][:12] for e in EXPIRES_IN])
def test_an_lwa_token_is_cached_for_a_bounded_time_whatever_expires_in_says(
    expires_in: str, lifetime: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spreports.spapi.tokens")
    cache, session, client = lwa_cache(expires_in)
    assert cache.token() == "Atza|odd-lifetime"
    assert cache.token() == "Atza|odd-lifetime"
    assert session.posts == 1  # cached, not fetched per call
    used = DEFAULT_LIFETIME_SECONDS if lifetime is ANOMALY else lifetime
    usable_ms = (used - refresh_margin(used)) * 1000
    assert usable_ms - 1000 < client.pttl(cache.key) <= usable_ms
    anomalies = [r.getMessage() for r in caplog.records if "an anomaly" in r.getMessage()]
    if lifetime is ANOMALY:
        assert len(anomalies) == 1 and "Atza|" not in anomalies[0] and "outside 1 to 86400 s" in anomalies[0]
    else:
        assert anomalies == []


@pytest.mark.parametrize("expires_in", ["Infinity", "1e308", "0.001", "0", "3600"])
def test_a_restricted_data_token_answer_reads_any_number_and_is_bounded_when_cached(expires_in: str) -> None:
    answer = CreateRestrictedDataTokenResponse.model_validate(
        json.loads('{"restrictedDataToken": "Atz.sprdt|x", "expiresIn": ' + expires_in + "}")
    )
    client = fakeredis.FakeRedis()

    def fetch() -> FetchedToken:
        return FetchedToken(answer.restricted_data_token.get_secret_value(), float(answer.expires_in))

    cache = SharedTokenCache(client, "rdt:odd", fetch, sealer=SEALER, local=LocalTokens())
    assert cache.token() == "Atz.sprdt|x"
    assert MIN_LIFETIME_SECONDS * 900 <= client.pttl(cache.key) <= DEFAULT_LIFETIME_SECONDS * 1000
