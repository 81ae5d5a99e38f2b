"""Stuck reports against the simulator: an IN_QUEUE one is cancelled and requested again once, an
IN_PROGRESS one only reported; both counted."""

from __future__ import annotations

from pathlib import Path

import redis

from spreports.simulator import Faults, start_simulator
from spreports.spapi import SpapiClient
from spreports.stuck import handle_stuck_reports
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def test_a_stuck_in_queue_report_is_cancelled_and_requested_again_once(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with start_simulator(quick_config(faults=Faults(queued_reports=1))) as sim:
        client = SpapiClient.for_seller(simulator_settings(sim, redis_url, tmp_path), sim.seller_id, redis=redis_client)
        queued = client.create_report(LISTINGS, ["ATVPDKIKX0DER"])
        sim.set_faults(stuck_reports=1)
        in_progress = client.create_report(LISTINGS, ["ATVPDKIKX0DER"])
        sim.advance(3 * 3600)  # past the threshold (2 h)
        sim.set_faults(queued_reports=1)  # the request made again gets stuck as well
        client = SpapiClient.for_seller(simulator_settings(sim, redis_url, tmp_path), sim.seller_id, redis=redis_client)
        found = handle_stuck_reports(client, redis_client, sim.seller_id, [LISTINGS], now=sim.clock.now())
        assert found.in_queue == [queued] and found.cancelled == [queued] and found.in_progress == [in_progress]
        again = found.requested_again[queued]
        assert sim.report(queued)["processingStatus"] == "CANCELLED"
        assert sim.report(in_progress)["processingStatus"] == "IN_PROGRESS"
        # The new request is stuck too: cancelled, not requested a third time.
        sim.advance(3 * 3600)
        client = SpapiClient.for_seller(simulator_settings(sim, redis_url, tmp_path), sim.seller_id, redis=redis_client)
        second = handle_stuck_reports(client, redis_client, sim.seller_id, [LISTINGS], now=sim.clock.now())
        assert second.cancelled == [again] and second.requested_again == {}
        counts = {k.decode(): int(v) for k, v in redis_client.hgetall(f"spreports:stuck:{LISTINGS}").items()}
        assert counts == {"in_queue": 2, "in_progress": 2, "requeued": 1}
        assert len(sim.requests("createReport")) == 3
