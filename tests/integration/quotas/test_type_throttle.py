"""A 429 on createReport backs off the report type asked for, never the seller's other types.

The simulator throttles one report type on its own (``type_limits``: per seller; ``app_limits``: per
application), with Amazon's 429 ``QuotaExceeded``. The client charges the 429 to that type (per seller,
or per application where the rule table gives the type an application-wide limit): its next request
waits (a QuotaWait, nothing sent), while the seller's other types are requested at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import request_report
from spreports.errors import QuotaWait
from spreports.report_types import AppLimit
from spreports.settings import Settings
from spreports.simulator import SellerAccount, Simulator, start_simulator
from spreports.spapi import SpapiClient
from spreports.spapi.operations import CREATE_REPORT
from spreports.spapi.ratelimit import RateLimiter
from spreports.spapi.type_throttle import BASE_SECONDS, TypeThrottled
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

AFN = "GET_AFN_INVENTORY_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
S_AND_T = "GET_SALES_AND_TRAFFIC_REPORT"
US = ["ATVPDKIKX0DER"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    sellers = (SellerAccount("A00SELLER", "Atzr|seller-0"), SellerAccount("A01SELLER", "Atzr|seller-1"))
    # AFN inventory: one request per seller per simulated hour; Sales and Traffic: Amazon's one per 15
    # minutes for the whole application (the simulator's default).
    simulator = start_simulator(quick_config(sellers=sellers, type_limits={AFN: (1, 3600.0)}))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, tmp_path: Path) -> Settings:
    sellers_file = tmp_path / "sellers.toml"
    sellers_file.write_text(
        "".join(f'[sellers.{s}]\nrefresh_token = "{t}"\n' for s, t in sim.refresh_tokens.items()), encoding="utf-8"
    )
    quick_follow = {"follow_first_seconds": 0.2, "follow_max_seconds": 1.0}
    return simulator_settings(sim, redis_url, tmp_path, sellers_file=sellers_file, requests=quick_follow)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def collect_results() -> Iterator[None]:
    """Finalise the test's Celery results while Redis is up (see tests/integration/reports/conftest.py)."""
    yield
    gc.collect()


def sim_seconds(sim: Simulator, record_time: str) -> float:
    return sim.clock.seconds_of(datetime.fromisoformat(record_time.replace("Z", "+00:00")))  # type: ignore[no-any-return]


def test_a_429_on_one_type_leaves_the_sellers_other_types_requested_at_once(
    sim: Simulator, settings: Settings, redis_client: redis.Redis
) -> None:
    seller = "A00SELLER"
    client = SpapiClient.for_seller(settings, seller, redis=redis_client)
    first = client.create_report(AFN, US)
    with pytest.raises(QuotaWait) as throttled:
        client.create_report(AFN, US)  # Amazon throttles this type: 429
    other = client.create_report(LISTINGS, US)  # the seller's other type goes at once
    with pytest.raises(TypeThrottled) as again:
        client.create_report(AFN, US)  # the throttled type waits, and nothing is sent
    assert isinstance(throttled.value, TypeThrottled)
    assert 0 < (throttled.value.retry_after or 0) <= BASE_SECONDS
    assert 0 < (again.value.retry_after or 0) <= BASE_SECONDS
    calls = sim.requests("createReport")
    assert [c.status for c in calls] == [202, 429, 202]
    assert [sim.report(r, seller)["reportType"] for r in (first, other)] == [AFN, LISTINGS]
    # On time: the other type was requested well within one createReport refill (60 s) of the 429, on
    # the simulator's clock; an emptied seller bucket would have held it a whole refill.
    assert sim_seconds(sim, calls[2].time) - sim_seconds(sim, calls[1].time) < 1 / CREATE_REPORT.rate
    # The seller's shared createReport bucket still holds its burst, less the three calls made.
    bucket = RateLimiter(redis_client).key(settings.region_of(seller), seller, CREATE_REPORT)
    assert float(redis_client.hget(bucket, "tokens") or 0) >= CREATE_REPORT.burst - 3 - 0.01


def test_a_429_on_a_type_with_an_application_wide_limit_backs_it_off_for_every_seller(
    sim: Simulator, settings: Settings, redis_client: redis.Redis
) -> None:
    # The product's own turns are opened wide here, so that Amazon's 429 is what stops the second request.
    wide = AppLimit(requests=100, per=timedelta(seconds=1))
    one, two = (SpapiClient.for_seller(settings, s, redis=redis_client) for s in ("A00SELLER", "A01SELLER"))
    for client in (one, two):
        client.app_limit_of = lambda report_type: wide if report_type == S_AND_T else None
    one.create_report(S_AND_T, US)
    with pytest.raises(QuotaWait):
        one.create_report(S_AND_T, US)  # 429: the application's limit of the type
    with pytest.raises(TypeThrottled, match="application-wide"):
        two.create_report(S_AND_T, US)  # another seller: the same limit, so it waits too, with no call
    two.create_report(LISTINGS, US)  # and its other types go on
    calls = sim.requests("createReport")
    assert [(c.seller_id, c.status) for c in calls] == [("A00SELLER", 202), ("A00SELLER", 429), ("A01SELLER", 202)]


def test_through_the_tasks_a_throttled_type_waits_and_the_sellers_other_type_is_stored(
    celery_worker: Any, sim: Simulator, settings: Settings
) -> None:
    done = request_report(AFN, marketplace_ids=US, settings=settings)
    assert done.get(timeout=60)["location"]
    # Another AFN report (another data window, so not reused): Amazon throttles the type.
    throttled = request_report(AFN, marketplace_ids=US, settings=settings, data_start_time="2026-01-01T00:00:00Z")
    wait_for(lambda: [c.status for c in sim.requests("createReport")] == [202, 429], timeout=60)
    wait_for(lambda: throttled.parent.state == "RETRY", timeout=30)  # a wait, not a failure
    # The seller's other type is requested and stored meanwhile.
    other = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    assert other.get(timeout=60)["location"]
    # In this order (the throttled request comes back only when its back-off of about a minute ends).
    assert [c.status for c in sim.requests("createReport")][:3] == [202, 429, 202]
    throttled.parent.revoke()
