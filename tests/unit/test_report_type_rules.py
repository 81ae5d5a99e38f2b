"""Amazon's documented per-type rules, and the request path refusing types nobody may request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from spreports.errors import InvalidRequest
from spreports.report_types import DEFAULT_RULES, rules_for
from spreports.reports.obtain import ReportSpec, RequestRegistry, obtain_report

SETTLEMENTS = (
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE",
    "GET_V2_SETTLEMENT_REPORT_DATA_XML",
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2",
)


@pytest.mark.parametrize("report_type", SETTLEMENTS)
def test_settlement_reports_are_neither_requested_nor_scheduled(report_type: str) -> None:
    rules = rules_for(report_type)
    assert not rules.requestable and not rules.schedulable


def test_documented_values() -> None:
    shipments = rules_for("GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL")
    assert not shipments.schedulable and shipments.requestable and shipments.max_window == timedelta(days=30)
    assert rules_for("GET_MERCHANT_LISTINGS_ALL_DATA") == DEFAULT_RULES and DEFAULT_RULES.requestable
    # Restricted types keep every other rule and gain the flag.
    restricted = rules_for("GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING")
    assert restricted.restricted and restricted.requestable and restricted.schedulable


class NoCalls:
    """A ReportApi that fails the test if the request path reaches Amazon."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called for a type that cannot be requested")


def test_the_request_path_refuses_a_settlement_report_before_any_call() -> None:
    client = fakeredis.FakeRedis()
    spec = ReportSpec.of("A1SELLER", SETTLEMENTS[2], ["ATVPDKIKX0DER"])
    with pytest.raises(InvalidRequest) as caught:
        obtain_report(spec, NoCalls(), RequestRegistry(client), owner="t", reuse_done=timedelta(hours=1),
                      check_amazon=True, now=datetime(2026, 11, 30, tzinfo=UTC))  # fmt: skip
    message = str(caught.value)
    assert message.startswith(f"{SETTLEMENTS[2]} cannot be requested: Amazon makes these reports by itself")
    assert client.keys() == []  # nothing claimed in the registry either
