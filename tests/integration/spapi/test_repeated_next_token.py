"""A getReports listing whose ``nextToken`` comes round again ends, instead of going round for ever."""

from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path

import pytest
import redis

from spreports.simulator import Simulator
from spreports.spapi import SpapiClient
from tests.sim import simulator_settings

TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"


def test_a_repeating_next_token_ends_the_listing(
    simulator: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = SpapiClient.for_seller(simulator_settings(simulator, redis_url, tmp_path), simulator.seller_id,
                                    redis=redis_client)  # fmt: skip
    created = [client.create_report(TYPE, ["ATVPDKIKX0DER"]) for _ in range(3)]
    simulator.set_faults(repeated_next_tokens=1000)
    with caplog.at_level(logging.WARNING, logger="spreports.spapi.client"):
        # Bounded here so that a client going round for ever fails the test instead of hanging it.
        listed = [r.report_id for r in islice(client.get_reports([TYPE], page_size=1), 20)]
    # Page 1 (newest first), then page 2 asked with its token: it came back with that same token.
    assert listed == [created[2], created[1]]
    assert [r.operation for r in simulator.requests()].count("getReports") == 2
    assert any("gave a nextToken it had given before" in r.getMessage() for r in caplog.records)


def test_a_listing_without_repeats_reaches_its_end(
    simulator: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    client = SpapiClient.for_seller(simulator_settings(simulator, redis_url, tmp_path), simulator.seller_id,
                                    redis=redis_client)  # fmt: skip
    created = [client.create_report(TYPE, ["ATVPDKIKX0DER"]) for _ in range(3)]
    assert [r.report_id for r in client.get_reports([TYPE], page_size=1)] == created[::-1]
