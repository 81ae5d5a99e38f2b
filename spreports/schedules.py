"""Desired report schedules and their reconciliation with Amazon's (createReportSchedule).

The desired schedules live in a TOML file (``SPREPORTS_SCHEDULES_FILE``)::

    [[schedules]]
    report_type = "GET_MERCHANT_LISTINGS_ALL_DATA"
    marketplace_ids = ["ATVPDKIKX0DER"]
    period = "P1D"
    sellers = ["A3TH9S8BH6GOGM"]          # optional: default every configured seller
    report_options = { custom = "true" }  # optional

createReportSchedule *replaces* a schedule with the same report type and marketplaces, which gives
it a new id and may shift its next run; so a schedule is only created when Amazon has none that
already matches (same type, marketplaces, period and options). Schedules Amazon has for types that
are not in the file are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spreports.errors import SettingsError
from spreports.settings import read_toml
from spreports.spapi.models import Period

log = logging.getLogger(__name__)

# getReportSchedules accepts at most 10 report types per call.
MAX_TYPES_PER_CALL = 10


class DesiredSchedule(BaseModel):
    """One schedule the user wants Amazon to run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_type: str = Field(min_length=1)
    marketplace_ids: list[str] = Field(min_length=1, max_length=25)
    period: Period
    sellers: list[str] = Field(default_factory=list)
    report_options: dict[str, str] = Field(default_factory=dict)

    def applies_to(self, seller_id: str) -> bool:
        """True when this schedule is wanted for ``seller_id``."""
        return not self.sellers or seller_id in self.sellers


class _ExistingSchedule(Protocol):
    @property
    def report_type(self) -> str: ...
    @property
    def marketplace_ids(self) -> list[str] | None: ...
    @property
    def period(self) -> str: ...
    @property
    def report_options(self) -> dict[str, str] | None: ...


class ScheduleClient(Protocol):
    """The part of the SP-API client that reconciliation needs."""

    def get_report_schedules(self, report_types: Sequence[str]) -> Sequence[_ExistingSchedule]: ...

    def create_report_schedule(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        period: str,
        *,
        report_options: dict[str, str] | None = None,
    ) -> str: ...


def read_schedules_file(path: Path) -> list[DesiredSchedule]:
    """Parse the schedules file; any mistake is a :class:`SettingsError` naming the entry."""
    entries = read_toml(path, "SCHEDULES_FILE").get("schedules", [])
    if not isinstance(entries, list):
        raise SettingsError(f"SPREPORTS_SCHEDULES_FILE: {path} needs [[schedules]] entries")
    schedules = []
    for number, entry in enumerate(entries, start=1):
        try:
            schedules.append(DesiredSchedule.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise SettingsError(f"SPREPORTS_SCHEDULES_FILE: schedule #{number}: {where}: {error['msg']}") from None
    return schedules


def _matches(desired: DesiredSchedule, existing: _ExistingSchedule) -> bool:
    return (
        existing.report_type == desired.report_type
        and sorted(existing.marketplace_ids or []) == sorted(desired.marketplace_ids)
        and existing.period == desired.period
        and (existing.report_options or {}) == desired.report_options
    )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sync_schedules(client: ScheduleClient, seller_id: str, desired: Sequence[DesiredSchedule]) -> dict[str, int]:
    """Create the seller's missing or changed schedules; return counts of ``created`` and ``kept``."""
    wanted = [schedule for schedule in desired if schedule.applies_to(seller_id)]
    types = sorted({schedule.report_type for schedule in wanted})
    existing: list[_ExistingSchedule] = []
    for chunk in _chunks(types, MAX_TYPES_PER_CALL):
        existing.extend(client.get_report_schedules(chunk))
    counts = {"created": 0, "kept": 0}
    for schedule in wanted:
        if any(_matches(schedule, current) for current in existing):
            counts["kept"] += 1
            continue
        schedule_id = client.create_report_schedule(
            schedule.report_type,
            schedule.marketplace_ids,
            schedule.period,
            report_options=schedule.report_options or None,
        )
        log.info(
            "created report schedule %s for seller %s: %s every %s",
            schedule_id,
            seller_id,
            schedule.report_type,
            schedule.period,
        )
        counts["created"] += 1
    return counts
