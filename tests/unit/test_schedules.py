"""Schedule reconciliation: create only what Amazon lacks, never re-create a matching schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spreports.schedules import DesiredSchedule, read_schedules_file, sync_schedules
from spreports.settings import SettingsError


@dataclass
class Existing:
    report_type: str
    marketplace_ids: list[str] | None
    period: str
    report_options: dict[str, str] | None = None


@dataclass
class FakeScheduleClient:
    """Holds schedules the way Amazon does: one per (type, marketplaces); create replaces."""

    schedules: list[Existing] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def get_report_schedules(self, report_types: Sequence[str]) -> list[Existing]:
        assert 1 <= len(report_types) <= 10
        self.calls.append(("get", *report_types))
        return [s for s in self.schedules if s.report_type in report_types]

    def create_report_schedule(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        period: str,
        *,
        report_options: dict[str, str] | None = None,
    ) -> str:
        self.calls.append(("create", report_type, period))
        self.schedules = [
            s
            for s in self.schedules
            if not (s.report_type == report_type and sorted(s.marketplace_ids or []) == sorted(marketplace_ids))
        ]
        self.schedules.append(Existing(report_type, list(marketplace_ids), period, report_options))
        return f"schedule-{len(self.calls)}"


LISTINGS = DesiredSchedule(
    report_type="GET_MERCHANT_LISTINGS_ALL_DATA", marketplace_ids=["ATVPDKIKX0DER"], period="P1D"
)


def test_missing_schedule_is_created_then_kept() -> None:
    client = FakeScheduleClient()
    assert sync_schedules(client, "A1", [LISTINGS]) == {"created": 1, "kept": 0}
    assert sync_schedules(client, "A1", [LISTINGS]) == {"created": 0, "kept": 1}
    assert [c[0] for c in client.calls] == ["get", "create", "get"]


def test_changed_period_replaces_and_marketplace_order_does_not_matter() -> None:
    client = FakeScheduleClient([Existing("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"], "PT12H")])
    assert sync_schedules(client, "A1", [LISTINGS]) == {"created": 1, "kept": 0}
    assert client.schedules == [Existing("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"], "P1D", None)]
    two = DesiredSchedule(report_type="X", marketplace_ids=["B", "A"], period="PT1H")
    client = FakeScheduleClient([Existing("X", ["A", "B"], "PT1H")])
    assert sync_schedules(client, "A1", [two]) == {"created": 0, "kept": 1}


def test_seller_filter_and_type_chunks() -> None:
    desired = [
        DesiredSchedule(report_type=f"TYPE_{n}", marketplace_ids=["M"], period="PT1H", sellers=["A1"])
        for n in range(12)
    ]
    client = FakeScheduleClient()
    assert sync_schedules(client, "OTHER", desired) == {"created": 0, "kept": 0}
    assert sync_schedules(client, "A1", desired) == {"created": 12, "kept": 0}
    gets = [c for c in client.calls if c[0] == "get"]
    assert [len(c) - 1 for c in gets] == [10, 2]


def test_schedules_file(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(
        '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'period = "P1D"\n\n[[schedules]]\nreport_type = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"\n'
        'marketplace_ids = ["A1PA6795UKMFR9"]\nperiod = "PT1H"\nsellers = ["A1"]\n'
    )
    schedules = read_schedules_file(path)
    assert [s.period for s in schedules] == ["P1D", "PT1H"]
    assert schedules[1].applies_to("A1") and not schedules[1].applies_to("A2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[schedules]]\nreport_type = "X"\nmarketplace_ids = ["M"]\nperiod = "P2W"\n', "schedule #1: period"),
        ('[[schedules]]\nreport_type = "X"\nperiod = "P1D"\n', "schedule #1: marketplace_ids: Field required"),
        ("[[schedules]\n", "is not valid TOML"),
    ],
)
def test_bad_schedules_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=expected):
        read_schedules_file(path)
