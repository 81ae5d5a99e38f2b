"""The schedules file: what the user wants Amazon to schedule (``[[schedules]]``) and beat to request
(``[[requests]]``), read and checked in full before anything is sent.

Every mistake is one :class:`SettingsError` line naming the file and the entry, e.g.
``SPREPORTS_SCHEDULES_FILE: /etc/spreports/schedules.toml: request #2 (GET_SALES_AND_TRAFFIC_REPORT):
window: ...``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from spreports.errors import SettingsError
from spreports.report_types import rules_for
from spreports.schedules.periods import parse_every, parse_window
from spreports.settings import read_toml
from spreports.spapi.models import Period

__all__ = ["DesiredSchedule", "RequestEntry", "SchedulesFile", "load_schedules_file", "read_schedules_file"]

VARIABLE = "SCHEDULES_FILE"
#: The range of a time in the file (as on the command line).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
E = TypeVar("E", bound="_Entry")
_TOP_LEVEL = ("prune", "schedules", "requests")
RESTATE_LIMIT = timedelta(days=90)


def _aware(value: Any) -> Any:
    """A time with its offset; a naive one is refused (Amazon would read it in an unknown zone)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("is not an ISO 8601 date-time, e.g. 2025-01-01T02:00:00-08:00") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("has no time zone offset: write it as e.g. 2025-01-01T02:00:00-08:00 or ...Z")
    if isinstance(value, datetime) and not EARLIEST <= value < LATEST:
        # A year like 9999 is a typo, and would overflow as a period is added to it.
        raise ValueError(f"is out of range: give a time from {EARLIEST:%Y-%m-%d} to {LATEST.year - 1}-12-31")
    return value


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    report_type: str = Field(min_length=1)
    marketplace_ids: list[str] = Field(min_length=1, max_length=25)
    sellers: list[str] = Field(default_factory=list)
    report_options: dict[str, str] = Field(default_factory=dict)
    _label: str = PrivateAttr(default="")

    @property
    def label(self) -> str:
        """How messages name this entry: ``schedule #2 (GET_...)``."""
        return self._label or self.report_type

    def applies_to(self, seller_id: str) -> bool:
        """True when this entry is wanted for ``seller_id``."""
        return not self.sellers or seller_id in self.sellers

    def overlaps(self, other: _Entry) -> bool:
        """Whether some seller is covered by both entries."""
        return not self.sellers or not other.sellers or bool(set(self.sellers) & set(other.sellers))


class DesiredSchedule(_Entry):
    """One ``[[schedules]]`` entry: a schedule the user wants Amazon to run."""

    period: Period
    #: When the schedule should create its first report (Amazon moves it on by ``period`` each time).
    next_report_creation_time: AwareDatetime | None = None
    #: Cancel Amazon's other schedules of this report type (the file-level ``prune`` does it for all types).
    prune: bool = False

    @field_validator("next_report_creation_time", mode="before")
    @classmethod
    def _aware_time(cls, value: Any) -> Any:
        return _aware(value)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What Amazon keeps one schedule per: the report type and the set of marketplaces."""
        return self.report_type, tuple(sorted(set(self.marketplace_ids)))


class RequestEntry(_Entry):
    """One ``[[requests]]`` entry: a report beat requests once every ``every``, for a data window."""

    every: str
    #: The data window, ending where the current period starts (``previous day``, ``last 7 days``, ``P7D``).
    window: str | None = None
    #: Pull each period's window again this much later (``P3D``): Amazon restates some figures for days.
    restate: str | None = None

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        parse_every(value)
        return value

    @field_validator("restate")
    @classmethod
    def _restate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_restate(value)
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @property
    def every_length(self) -> timedelta:
        """How long one period is."""
        return parse_every(self.every)

    @property
    def window_length(self) -> timedelta | None:
        """How long the data window is (None: Amazon's default window)."""
        return None if self.window is None else parse_window(self.window)

    @property
    def restate_after(self) -> timedelta | None:
        """How long after a period's first pull its window is pulled again (None: never)."""
        return None if self.restate is None else parse_restate(self.restate)

    @property
    def key(self) -> str:
        """A stable id of what is requested: the same entry keeps it across edits of other entries."""
        identity = [self.report_type, sorted(set(self.marketplace_ids)), self.report_options, self.every, self.window]
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    def data_window(self, period_start: datetime) -> tuple[datetime, datetime] | None:
        """The (dataStartTime, dataEndTime) of the request of the period starting at ``period_start``."""
        length = self.window_length
        return None if length is None else (period_start - length, period_start)


@dataclass(frozen=True)
class SchedulesFile:
    """The whole schedules file, checked; ``digest`` changes when its content does (comments aside)."""

    path: Path
    digest: str
    prune: bool
    schedules: tuple[DesiredSchedule, ...]
    requests: tuple[RequestEntry, ...] = ()

    def report_types(self) -> list[str]:
        """Every report type the file names, sorted."""
        return sorted({e.report_type for e in self.schedules} | {e.report_type for e in self.requests})

    def prunes(self, report_type: str, seller_id: str) -> bool:
        """Whether Amazon's schedules of ``report_type`` that no entry wants are cancelled for this seller."""
        return self.prune or any(
            s.prune and s.report_type == report_type and s.applies_to(seller_id) for s in self.schedules
        )


def _fail(path: Path, where: str, message: str) -> SettingsError:
    return SettingsError(f"SPREPORTS_{VARIABLE}: {path}: {where}: {message}")


def _entries(path: Path, data: dict[str, Any], table: str) -> list[Any]:
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _fail(path, table, f"write each entry as a [[{table}]] table")
    return entries


def _parse(path: Path, model: type[E], entry: dict[str, Any], label: str) -> E:
    try:
        parsed = model.model_validate(entry)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "entry"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise _fail(path, label, f"{where}: {message}") from None
    parsed._label = label
    return parsed


def _label(kind: str, number: int, entry: dict[str, Any]) -> str:
    report_type = entry.get("report_type")
    return f"{kind} #{number} ({report_type})" if isinstance(report_type, str) and report_type else f"{kind} #{number}"


def _check_schedule(path: Path, schedule: DesiredSchedule, earlier: list[DesiredSchedule]) -> None:
    if not rules_for(schedule.report_type).schedulable:
        raise _fail(path, schedule.label, unschedulable_advice(schedule.report_type))
    for other in earlier:
        if other.key == schedule.key and other.overlaps(schedule):
            raise _fail(path, schedule.label, f"duplicates {other.label}: same report type and marketplaces")


def _check_request(path: Path, request: RequestEntry, earlier: list[RequestEntry]) -> None:
    rules = rules_for(request.report_type)
    most = rules.max_marketplaces
    if most is not None and len(set(request.marketplace_ids)) > most:
        raise _fail(path, request.label, f"marketplace_ids: {request.report_type} takes at most {most} marketplace(s) "
                                         f"per request ({rules.source}); write one entry per marketplace")  # fmt: skip
    window = request.window_length
    longest = rules.max_window
    if window is not None and window > longest:
        raise _fail(path, request.label, f"window: {request.window!r} is longer than the {longest.days} days "
                                         f"{request.report_type} allows")  # fmt: skip
    for other in earlier:
        same = (other.report_type, sorted(set(other.marketplace_ids)), other.report_options, other.window)
        if same == (request.report_type, sorted(set(request.marketplace_ids)), request.report_options,
                    request.window) and other.overlaps(request):  # fmt: skip
            raise _fail(path, request.label, f"duplicates {other.label}: same report, marketplaces, options and window")


def parse_restate(text: str) -> timedelta:
    """The delay of a restated pull: an ISO 8601 duration (``PT<n>H``, ``P<n>D``) shorter than 90 days."""
    try:
        length = parse_every(text)
    except ValueError:
        raise ValueError(
            f"unknown duration {text!r}: use an ISO 8601 duration of 5 minutes or more, e.g. P3D or PT72H"
        ) from None
    if length >= RESTATE_LIMIT:
        # The earlier report must still be Amazon's to name the document the restated one supersedes.
        raise ValueError(f"{text!r} is not shorter than the {RESTATE_LIMIT.days} days Amazon keeps reports")
    return length


def unschedulable_advice(report_type: str) -> str:
    """The words for a report type Amazon will not schedule, with what to do instead."""
    return (
        f"Amazon does not allow report schedules for {report_type}; "
        "request it on a cadence with a [[requests]] entry (report_type, marketplace_ids, every, window) instead"
    )


def load_schedules_file(path: Path) -> SchedulesFile:
    """Read and check the whole file; any mistake is a :class:`SettingsError` naming the entry."""
    data = read_toml(path, VARIABLE)
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise _fail(path, unknown[0], "unknown key; the file holds prune, [[schedules]] and [[requests]]")
    prune = data.get("prune", False)
    if not isinstance(prune, bool):
        raise _fail(path, "prune", "must be true or false")
    schedules: list[DesiredSchedule] = []
    for number, entry in enumerate(_entries(path, data, "schedules"), start=1):
        schedule = _parse(path, DesiredSchedule, entry, _label("schedule", number, entry))
        _check_schedule(path, schedule, schedules)
        schedules.append(schedule)
    requests: list[RequestEntry] = []
    for number, entry in enumerate(_entries(path, data, "requests"), start=1):
        request = _parse(path, RequestEntry, entry, _label("request", number, entry))
        _check_request(path, request, requests)
        requests.append(request)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return SchedulesFile(path, digest, prune, tuple(schedules), tuple(requests))


def read_schedules_file(path: Path) -> list[DesiredSchedule]:
    """The ``[[schedules]]`` entries of the file (the whole file is checked)."""
    return list(load_schedules_file(path).schedules)
