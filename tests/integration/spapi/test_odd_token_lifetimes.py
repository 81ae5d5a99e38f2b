"""A token endpoint answering an odd ``expires_in`` (the simulator sends what it is told, ``Infinity``
included): the product uses the token, caches it for a bounded time and fetches it once, for LWA tokens
and Restricted Data Tokens alike."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from spreports.simulator import DocumentSpec, Simulator, start_simulator
from spreports.spapi import SpapiClient
from tests.sim import quick_config, simulator_settings


@pytest.fixture(params=[math.inf, 1e308, 0.001], ids=["Infinity", "1e308", "0.001"])
def odd_sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    sim = start_simulator(quick_config(token_expires_in=request.param))
    yield sim
    sim.stop()


def test_a_token_with_an_odd_lifetime_is_used_and_fetched_once(
    odd_sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    sim = odd_sim
    form = {"grant_type": "refresh_token", "refresh_token": sim.refresh_tokens[sim.seller_id],
            "client_id": sim.client_id, "client_secret": sim.client_secret}  # fmt: skip
    raw = requests.post(sim.token_url, data=form, timeout=30).text
    assert f'"expires_in": {sim.config.token_expires_in}'.replace("inf", "Infinity") in raw  # as Amazon might send it
    client = SpapiClient.for_seller(simulator_settings(sim, redis_url, tmp_path), sim.seller_id, redis=redis_client)
    report = sim.world.create_report(sim.seller_id, "GET_MERCHANT_LISTINGS_ALL_DATA", ("ATVPDKIKX0DER",))
    for _ in range(3):
        assert client.get_report(report.report_id).report_id == report.report_id
    restricted = sim.add_document(DocumentSpec(restricted=True))
    for _ in range(2):
        assert client.get_report_document(restricted, "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING").url
    assert len(sim.requests("lwaToken")) == 2  # the test's own request, then the product's: once for five calls
    assert len(sim.requests("createRestrictedDataToken")) == 1
    assert {r.status for r in sim.requests()} == {200}
