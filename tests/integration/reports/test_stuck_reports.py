"""Stuck reports against the simulator: the product's stuck IN_QUEUE report is requested again (once, with
its spec), another program's is only reported, an IN_PROGRESS one only reported; all on one page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import redis

from spreports.reports.obtain import ReportSpec, RequestRegistry, obtain_report
from spreports.reports.stuck import handle_stuck_reports
from spreports.simulator import Faults, start_simulator
from spreports.spapi import SpapiClient
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = ["ATVPDKIKX0DER"]


def test_the_products_stuck_report_is_requested_again_and_another_programs_is_left_alone(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with start_simulator(quick_config(faults=Faults(queued_reports=12))) as sim:
        settings = simulator_settings(sim, redis_url, tmp_path)
        client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
        window = (sim.clock.now() - timedelta(days=2), sim.clock.now() - timedelta(days=1))
        spec = ReportSpec.of(sim.seller_id, LISTINGS, US, {"custom": "true"}, *window)
        obtained = obtain_report(spec, client, RequestRegistry(redis_client), owner="test", reuse_done=timedelta(0),
                                 check_amazon=False, now=sim.clock.now())  # fmt: skip
        others = [client.create_report(LISTINGS, US) for _ in range(11)]  # another program's, stuck as well
        sim.set_faults(stuck_reports=1)
        in_progress = client.create_report(LISTINGS, US)
        sim.advance(3 * 3600)  # past the threshold (2 h)
        client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)

        def pages() -> int:  # getReports answered (an access token expired by the jump is refused first)
            return sum(1 for r in sim.requests("getReports") if r.status == 200)

        listed = pages()
        requeued: list[tuple[ReportSpec, str]] = []

        found = handle_stuck_reports(client, redis_client, sim.seller_id, [LISTINGS], now=sim.clock.now(),
                                     requeue=lambda spec, stuck: requeued.append((spec, stuck)))  # fmt: skip
        assert pages() == listed + 1  # 13 stuck reports: one page of 100, not two of 10
        assert requeued == [(spec, obtained.report_id)]
        assert sorted(found.not_ours) == sorted(others) and found.in_progress == [in_progress]
        # Nothing cancelled: another program's reports are its own, and the product's waits for its replacement.
        assert sim.requests("cancelReport") == []
        assert {sim.report(r)["processingStatus"] for r in [obtained.report_id, *others]} == {"IN_QUEUE"}
        counts = {k.decode(): int(v) for k, v in redis_client.hgetall(f"spreports:stuck:{LISTINGS}").items()}
        assert counts == {"in_queue": 12, "in_progress": 1, "not_ours": 11, "requeued": 1}
