"""getReports with a createdSince beyond Amazon's 90 days of retention is refused in one line before the call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from spreports.errors import InvalidRequest
from spreports.settings import Settings
from spreports.simulator import Simulator
from spreports.spapi import SpapiClient
from tests.sim import simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


@pytest.fixture
def settings(sim: Simulator, redis_url: str, tmp_path: Path) -> Settings:
    return simulator_settings(sim, redis_url, tmp_path)  # type: ignore[no-any-return]


def test_created_since_beyond_90_days_is_refused_before_the_call(
    sim: Simulator, settings: Settings, redis_client: redis.Redis
) -> None:
    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    now = datetime.now(UTC)
    with pytest.raises(InvalidRequest, match="more than 90 days ago") as caught:
        list(client.get_reports(report_types=[LISTINGS], created_since=now - timedelta(days=91)))
    assert "\n" not in str(caught.value)
    assert sim.requests("getReports") == []
    # Within Amazon's 90 days (the edge included), the call is made.
    assert list(client.get_reports(report_types=[LISTINGS], created_since=now - timedelta(days=90))) == []
    assert [r.status for r in sim.requests("getReports")] == [200]
