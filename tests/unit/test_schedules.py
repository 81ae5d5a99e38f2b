"""Schedule reconciliation: create only what Amazon lacks, never re-create a matching schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spreports.errors import ErrorDetail, InvalidRequest
from spreports.schedules import (
    DesiredSchedule,
    load_schedules_file,
    plan_schedules,
    read_schedules_file,
    sync_schedules,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Existing:
    report_type: str
    marketplace_ids: list[str] | None
    period: str
    report_options: dict[str, str] | None = None
    next_report_creation_time: datetime | None = None
    report_schedule_id: str = "existing"


@dataclass
class FakeScheduleClient:
    """Holds schedules the way Amazon does: one per (type, marketplaces); create replaces."""

    schedules: list[Existing] = field(default_factory=list)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    refuse: frozenset[str] = frozenset()

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
        next_report_creation_time: datetime | None = None,
    ) -> str:
        self.calls.append(("create", report_type, period, next_report_creation_time))
        if report_type in self.refuse:
            error = InvalidRequest("createReportSchedule failed")
            error.errors = (
                ErrorDetail("InvalidInput", "Creation of report schedule type 47700 is not allowed at this time"),
            )
            raise error
        self.schedules = [
            s
            for s in self.schedules
            if not (s.report_type == report_type and sorted(s.marketplace_ids or []) == sorted(marketplace_ids))
        ]
        new_id = f"schedule-{len(self.calls)}"
        next_run = next_report_creation_time or NOW + timedelta(days=1)
        self.schedules.append(Existing(report_type, list(marketplace_ids), period, report_options, next_run, new_id))
        return new_id

    def cancel_report_schedule(self, report_schedule_id: str) -> None:
        self.calls.append(("cancel", report_schedule_id))
        self.schedules = [s for s in self.schedules if s.report_schedule_id != report_schedule_id]

    def writes(self) -> list[tuple[object, ...]]:
        return [c for c in self.calls if c[0] != "get"]


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
    assert plan_schedules(client, "A1", [LISTINGS]).steps[0].action == "replace"
    assert sync_schedules(client, "A1", [LISTINGS]) == {"created": 1, "kept": 0}
    assert [(s.report_type, s.period) for s in client.schedules] == [("GET_MERCHANT_LISTINGS_ALL_DATA", "P1D")]
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


def test_next_creation_time_is_sent_as_its_next_future_run() -> None:
    at_two = datetime(2025, 1, 1, 2, 0, tzinfo=timezone_minus(8))
    daily = LISTINGS.model_copy(update={"next_report_creation_time": at_two})
    client = FakeScheduleClient()
    assert sync_schedules(client, "A1", [daily], now=NOW) == {"created": 1, "kept": 0}
    sent = client.writes()[0][3]
    assert isinstance(sent, datetime)
    assert sent == datetime(2025, 3, 11, 2, 0, tzinfo=timezone_minus(8))  # 02:00 at -08:00, the next one after NOW
    # Amazon moves the schedule on after each report: a whole number of periods later is unchanged.
    client.schedules[0].next_report_creation_time = sent + timedelta(days=3)
    assert sync_schedules(client, "A1", [daily], now=NOW + timedelta(days=3)) == {"created": 0, "kept": 1}
    # Another time of day is a change.
    at_three = daily.model_copy(update={"next_report_creation_time": at_two + timedelta(hours=1)})
    assert plan_schedules(client, "A1", [at_three], now=NOW).steps[0].action == "replace"


def timezone_minus(hours: int) -> object:
    from datetime import timezone

    return timezone(-timedelta(hours=hours))


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    return path


def test_prune_cancels_only_undeclared_schedules_of_declared_types(tmp_path: Path) -> None:
    text = (
        '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'period = "P1D"\n'
    )
    amazon = [
        Existing("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"], "P1D", report_schedule_id="wanted"),
        Existing("GET_MERCHANT_LISTINGS_ALL_DATA", ["A1PA6795UKMFR9"], "P1D", report_schedule_id="old"),
        Existing("OTHER_TYPE", ["ATVPDKIKX0DER"], "P1D", report_schedule_id="other"),
    ]
    unpruned = load_schedules_file(_file(tmp_path, text))
    client = FakeScheduleClient(list(amazon))
    plan = plan_schedules(client, "A1", unpruned)
    assert [(s.action, s.schedule_id) for s in plan.steps] == [("keep", "wanted"), ("unmanaged", "old")]
    assert sync_schedules(client, "A1", unpruned) == {"created": 0, "kept": 1}
    assert client.writes() == []
    for pruned_text in ("prune = true\n" + text, text + "prune = true\n"):
        client = FakeScheduleClient(list(amazon))
        pruned = load_schedules_file(_file(tmp_path, pruned_text))
        assert sync_schedules(client, "A1", pruned) == {"created": 0, "kept": 1, "cancelled": 1}
        assert client.writes() == [("cancel", "old")]
        assert {s.report_schedule_id for s in client.schedules} == {"wanted", "other"}


def test_a_refused_type_names_its_entry_and_the_others_go_on() -> None:
    refused = DesiredSchedule(report_type="GET_REFUSED_REPORT", marketplace_ids=["M"], period="P1D")
    refused._label = "schedule #1 (GET_REFUSED_REPORT)"
    client = FakeScheduleClient(refuse=frozenset({"GET_REFUSED_REPORT"}))
    counts = sync_schedules(client, "A1", [refused, LISTINGS])
    assert counts["created"] == 1
    [message] = counts["refused"]
    assert message.startswith("schedule #1 (GET_REFUSED_REPORT): Amazon does not allow report schedules")
    assert "[[requests]]" in message


def test_other_refusals_are_errors() -> None:
    class Broken(FakeScheduleClient):
        def create_report_schedule(self, *args: object, **kwargs: object) -> str:
            raise InvalidRequest("marketplaceIds: Invalid input")

    with pytest.raises(InvalidRequest, match="marketplaceIds"):
        sync_schedules(Broken(), "A1", [LISTINGS])


def test_schedules_file(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'period = "P1D"\n\n[[schedules]]\nreport_type = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"\n'
        'marketplace_ids = ["A1PA6795UKMFR9"]\nperiod = "PT1H"\nsellers = ["A1"]\n'
        "next_report_creation_time = 2025-01-01T02:00:00Z\n",
    )
    schedules = read_schedules_file(path)
    assert [s.period for s in schedules] == ["P1D", "PT1H"]
    assert schedules[1].applies_to("A1") and not schedules[1].applies_to("A2")
    assert schedules[1].next_report_creation_time == datetime(2025, 1, 1, 2, tzinfo=UTC)
    first = load_schedules_file(path).digest
    path.write_text("# a comment changes nothing\n" + path.read_text())
    assert load_schedules_file(path).digest == first
