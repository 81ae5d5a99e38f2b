"""Amazon's per-type rules as data: FBA generation intervals as FATAL cooldowns, one marketplace for Sales
and Traffic, each rule with its source; a FATAL report starts its cooldown once however often it is seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from spreports.errors import InvalidRequest, SettingsError
from spreports.report_types import RULES, rules_for
from spreports.reports.cooldowns import cooldown_until, start_cooldown
from spreports.reports.obtain import ReportSpec, RequestRegistry, obtain_report, refuse_broken_rules
from spreports.schedules import load_schedules_file

S_AND_T = "GET_SALES_AND_TRAFFIC_REPORT"
TWO = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
DAILY_FBA = (
    "GET_FBA_INVENTORY_PLANNING_DATA",
    "GET_FBA_STORAGE_FEE_CHARGES_DATA",
    "GET_FBA_ESTIMATED_FBA_FEES_TXT_DATA",
    "GET_STRANDED_INVENTORY_UI_DATA",
    "GET_RESTOCK_INVENTORY_RECOMMENDATIONS_REPORT",
    "GET_FBA_REIMBURSEMENTS_DATA",
)
NEAR_REAL_TIME_FBA = (
    "GET_AFN_INVENTORY_DATA",
    "GET_FBA_FULFILLMENT_CURRENT_INVENTORY_DATA",
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA",
    "GET_FBA_MYI_ALL_INVENTORY_DATA",
)


@pytest.mark.parametrize("report_type", DAILY_FBA)
def test_a_fatal_fba_daily_report_cools_down_for_four_hours(report_type: str) -> None:
    now = [1_000_000.0]
    client = fakeredis.FakeRedis()
    end = start_cooldown(client, "A1", report_type, clock=lambda: now[0])
    assert end == datetime.fromtimestamp(now[0], UTC) + timedelta(hours=4)
    assert rules_for(report_type).generated_every == timedelta(hours=4)
    now[0] += 3.9 * 3600  # past the default 30 minutes, still within Amazon's four hours
    assert cooldown_until(client, "A1", report_type, clock=lambda: now[0]) == end


@pytest.mark.parametrize("report_type", NEAR_REAL_TIME_FBA)
def test_a_fatal_near_real_time_report_cools_down_for_thirty_minutes(report_type: str) -> None:
    rules = rules_for(report_type)
    assert rules.fatal_cooldown == rules.generated_every == timedelta(minutes=30)


def test_every_documented_rule_names_its_source() -> None:
    assert all("SP-API docs" in rules.source for rules in RULES.values())


def test_a_fatal_report_seen_again_does_not_lengthen_its_cooldown() -> None:
    now = [1_000_000.0]
    client = fakeredis.FakeRedis()
    first = start_cooldown(client, "A1", "GET_X", report_id="R1", clock=lambda: now[0])
    now[0] += 600  # the follower, the retrieval, the relay: the same report, later
    assert start_cooldown(client, "A1", "GET_X", report_id="R1", clock=lambda: now[0]) == first
    # Another FATAL report of the type does lengthen it.
    assert start_cooldown(client, "A1", "GET_X", report_id="R2", clock=lambda: now[0]) == first + timedelta(minutes=10)


class NoCalls:
    """A ReportApi that fails the test if the request path reaches Amazon."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called for a request the rules forbid")


def test_sales_and_traffic_for_two_marketplaces_is_refused_in_one_line_before_any_call() -> None:
    client = fakeredis.FakeRedis()
    spec = ReportSpec.of("A1SELLER", S_AND_T, TWO)
    with pytest.raises(InvalidRequest) as caught:
        obtain_report(spec, NoCalls(), RequestRegistry(client), owner="t", reuse_done=timedelta(hours=1),
                      check_amazon=True, now=datetime(2026, 11, 30, tzinfo=UTC))  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{S_AND_T} takes at most 1 marketplace(s) per request")
    assert "A2EUQ1WTGCTBG2" in message and "Analytics Reports" in message
    assert client.keys() == []  # nothing claimed in the registry either
    refuse_broken_rules(S_AND_T, ["ATVPDKIKX0DER"])  # one marketplace: allowed
    refuse_broken_rules("GET_MERCHANT_LISTINGS_ALL_DATA", TWO)  # no such rule


def test_a_schedules_file_asking_sales_and_traffic_for_two_marketplaces_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(
        f'[[requests]]\nreport_type = "{S_AND_T}"\nmarketplace_ids = {TWO!r}\nevery = "P1D"\n'.replace("'", '"')
    )
    with pytest.raises(SettingsError) as failure:
        load_schedules_file(path)
    message = str(failure.value)
    assert "\n" not in message
    assert f"request #1 ({S_AND_T}): marketplace_ids: {S_AND_T} takes at most 1 marketplace(s)" in message
