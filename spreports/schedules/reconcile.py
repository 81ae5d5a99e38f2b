"""Reconciliation of one seller's schedules with Amazon's: a plan (create / replace / keep / cancel), then
the calls it needs, and none when everything is in place.

createReportSchedule *replaces* a schedule of the same report type and marketplaces, which gives it a
new id and may shift its next run; so a schedule is only created when Amazon has none that already
matches (same type, marketplaces, period and options, and the same run times up to whole periods: a
schedule that Amazon moved on after it fired is unchanged). Schedules Amazon has for the file's report
types that no entry wants are cancelled only where the file says ``prune = true``; the plan shows them
either way. Types the file does not name are never looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from spreports.errors import InvalidRequest
from spreports.schedules.entries import DesiredSchedule, SchedulesFile, unschedulable_advice
from spreports.schedules.periods import same_phase, upcoming

__all__ = ["MAX_TYPES_PER_CALL", "Action", "Plan", "ScheduleClient", "Step", "apply_plan", "plan_schedules",
           "sync_schedules"]  # fmt: skip

log = logging.getLogger(__name__)

# getReportSchedules accepts at most 10 report types per call.
MAX_TYPES_PER_CALL = 10

Action = Literal["create", "replace", "keep", "cancel", "unmanaged"]


class ExistingSchedule(Protocol):
    """What reconciliation reads of one of Amazon's schedules (a ``ReportSchedule``)."""

    @property
    def report_schedule_id(self) -> str: ...
    @property
    def report_type(self) -> str: ...
    @property
    def marketplace_ids(self) -> list[str] | None: ...
    @property
    def period(self) -> str: ...
    @property
    def report_options(self) -> dict[str, str] | None: ...
    @property
    def next_report_creation_time(self) -> datetime | None: ...


class ScheduleClient(Protocol):
    """The part of the SP-API client that reconciliation needs."""

    def get_report_schedules(self, report_types: Sequence[str]) -> Sequence[ExistingSchedule]: ...

    def create_report_schedule(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        period: str,
        *,
        report_options: dict[str, str] | None = None,
        next_report_creation_time: datetime | None = None,
    ) -> str: ...

    def cancel_report_schedule(self, report_schedule_id: str) -> None: ...


@dataclass(frozen=True)
class Step:
    """One line of a plan: what happens to one schedule."""

    action: Action
    report_type: str
    marketplace_ids: tuple[str, ...]
    period: str
    #: Amazon's schedule this step is about (None for a create).
    schedule_id: str | None = None
    #: The file's entry this step comes from (None for a cancel or an unmanaged schedule).
    desired: DesiredSchedule | None = None
    #: The next run: Amazon's for keep/cancel/unmanaged, the one asked for on create/replace (None: Amazon's choice).
    next_run: datetime | None = None

    @property
    def writes(self) -> bool:
        """Whether the step needs a write call (createReportSchedule or cancelReportSchedule)."""
        return self.action in ("create", "replace", "cancel")


@dataclass(frozen=True)
class Plan:
    """What one seller's schedules need, step by step."""

    seller_id: str
    steps: tuple[Step, ...]

    def count(self, action: Action) -> int:
        """How many steps take ``action``."""
        return sum(1 for step in self.steps if step.action == action)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _key(schedule: ExistingSchedule) -> tuple[str, tuple[str, ...]]:
    return schedule.report_type, tuple(sorted(set(schedule.marketplace_ids or [])))


def _unchanged(desired: DesiredSchedule, existing: ExistingSchedule) -> bool:
    if existing.period != desired.period or (existing.report_options or {}) != desired.report_options:
        return False
    wanted, current = desired.next_report_creation_time, existing.next_report_creation_time
    return wanted is None or current is None or same_phase(wanted, current, desired.period)


def _as_file(desired: SchedulesFile | Sequence[DesiredSchedule]) -> SchedulesFile:
    if isinstance(desired, SchedulesFile):
        return desired
    from pathlib import Path

    return SchedulesFile(Path("-"), "", False, tuple(desired))


def plan_schedules(
    client: ScheduleClient,
    seller_id: str,
    desired: SchedulesFile | Sequence[DesiredSchedule],
    *,
    now: datetime | None = None,
) -> Plan:
    """Compare the seller's wanted schedules with Amazon's (getReportSchedules only; nothing is changed)."""
    wanted_file = _as_file(desired)
    now = now or datetime.now(UTC)
    wanted = [schedule for schedule in wanted_file.schedules if schedule.applies_to(seller_id)]
    types = sorted({schedule.report_type for schedule in wanted})
    existing: dict[tuple[str, tuple[str, ...]], ExistingSchedule] = {}
    for chunk in _chunks(types, MAX_TYPES_PER_CALL):
        existing.update((_key(current), current) for current in client.get_report_schedules(chunk))
    steps = [_step(schedule, existing.pop(schedule.key, None), now) for schedule in wanted]
    for current in sorted(existing.values(), key=_key):
        action: Action = "cancel" if wanted_file.prunes(current.report_type, seller_id) else "unmanaged"
        steps.append(_existing_step(action, current))
    return Plan(seller_id, tuple(steps))


def _existing_step(action: Action, current: ExistingSchedule, desired: DesiredSchedule | None = None) -> Step:
    return Step(action, current.report_type, _key(current)[1], current.period, current.report_schedule_id, desired,
                current.next_report_creation_time)  # fmt: skip


def _step(schedule: DesiredSchedule, current: ExistingSchedule | None, now: datetime) -> Step:
    if current is not None and _unchanged(schedule, current):
        return _existing_step("keep", current, schedule)
    first = schedule.next_report_creation_time
    next_run = None if first is None else upcoming(first, schedule.period, now)
    action: Action = "create" if current is None else "replace"
    schedule_id = None if current is None else current.report_schedule_id
    return Step(action, schedule.report_type, schedule.key[1], schedule.period, schedule_id, schedule, next_run)


def _refused(exc: InvalidRequest) -> bool:
    """Whether Amazon refused a schedule because the report type cannot be scheduled."""
    texts = [str(exc), *(f"{e.message} {e.details or ''}" for e in exc.errors)]
    return any("report schedule" in text.lower() and "not allowed" in text.lower() for text in texts)


def apply_plan(client: ScheduleClient, plan: Plan) -> dict[str, Any]:
    """Make the plan's write calls; return counts, and the refusals as messages naming their entries.

    A refusal of one entry (Amazon will not schedule its type) does not stop the others.
    """
    counts: dict[str, Any] = {"created": 0, "kept": 0}
    refused: list[str] = []
    for step in plan.steps:
        if step.action in ("create", "replace") and step.desired is not None:
            try:
                _create(client, plan.seller_id, step, step.desired)
            except InvalidRequest as exc:
                if not _refused(exc):
                    raise
                refused.append(f"{step.desired.label}: {unschedulable_advice(step.report_type)}")
                log.warning("seller %s: %s", plan.seller_id, refused[-1])
                continue
            counts["created"] += 1
        elif step.action == "cancel" and step.schedule_id is not None:
            client.cancel_report_schedule(step.schedule_id)
            log.info("cancelled report schedule %s of seller %s: %s (prune)", step.schedule_id, plan.seller_id,
                     step.report_type)  # fmt: skip
            counts["cancelled"] = counts.get("cancelled", 0) + 1
        elif step.action == "keep":
            counts["kept"] += 1
    if refused:
        counts["refused"] = refused
    return counts


def _create(client: ScheduleClient, seller_id: str, step: Step, desired: DesiredSchedule) -> None:
    kwargs: dict[str, Any] = {"report_options": desired.report_options or None}
    if step.next_run is not None:  # only sent when asked for: a client that predates it still works
        kwargs["next_report_creation_time"] = step.next_run
    schedule_id = client.create_report_schedule(desired.report_type, desired.marketplace_ids, desired.period, **kwargs)
    log.info("%s report schedule %s for seller %s: %s every %s", "created" if step.action == "create" else "replaced",
             schedule_id, seller_id, desired.report_type, desired.period)  # fmt: skip


def sync_schedules(
    client: ScheduleClient,
    seller_id: str,
    desired: SchedulesFile | Sequence[DesiredSchedule],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Plan and apply: create the seller's missing or changed schedules (cancel unwanted ones with prune).

    Returns counts of ``created`` (replacements included) and ``kept``, plus ``cancelled`` and ``refused``
    (messages naming the entries Amazon will not schedule) when there are any.
    """
    return apply_plan(client, plan_schedules(client, seller_id, desired, now=now))
