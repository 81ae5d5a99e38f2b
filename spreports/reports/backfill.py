"""Backfill: one report type over a long date range, requested window by window, resumable.

Amazon caps a report's data window per type (:func:`spreports.report_types.rules_for`). A
:class:`BackfillPlan` splits the range into consecutive windows no longer than that cap; each window is
one request through :func:`spreports.reports.obtain.obtain_report` (so an identical report in flight
or fresh is reused, and createReport is paid once fleet-wide). Progress lives in Redis, one hash per
plan: a run that stops (a worker killed, the command interrupted) and starts again with the same
arguments continues where it was and never requests a window twice.

Each window goes ``requested`` (at Amazon) -> ``retrieving`` (DONE, its document queued) -> ``stored``,
or ends ``cancelled`` (no data) or ``fatal``. At most ``parallel`` windows are at Amazon at once:
Amazon works through one seller's reports of a type one after the other anyway.

One run moves a plan's windows at a time (:mod:`spreports.reports.backfill_runs`); each claims a window in
the request registry under its own name, so two runs never both pass the claim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from spreports import keys
from spreports.errors import InvalidRequest, ReportCancelled, ReportFatal
from spreports.redis_errors import redis_call
from spreports.report_types import rules_for
from spreports.reports.obtain import Finished, ReportApi, ReportSpec, RequestRegistry, obtain_report, report_outcome

KEY_PREFIX = keys.BACKFILL_PROGRESS.prefix
# Amazon keeps reports 90 days: a plan's progress is kept as long.
PROGRESS_TTL_SECONDS = 90 * 24 * 3600
# A queued retrieval not stored after this long is queued again (it was lost, or failed and was re-driven).
REQUEUE_SECONDS = 3600
FINAL = ("stored", "cancelled", "fatal")
# Consecutive windows must not share an instant: each ends one second before the next begins.
END_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class Window:
    """One request's data window: ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def data_end_time(self) -> datetime:
        """The dataEndTime sent to Amazon (inclusive, so one second before the next window)."""
        return self.end - END_MARGIN


def split_windows(start: datetime, end: datetime, longest: timedelta) -> list[Window]:
    """Consecutive windows covering ``[start, end)``, none longer than ``longest``."""
    if end <= start:
        raise InvalidRequest("the backfill range is empty: its end must come after its start")
    windows = []
    while start < end:
        windows.append(Window(start, min(start + longest, end)))
        start = windows[-1].end
    return windows


@dataclass(frozen=True)
class BackfillPlan:
    """A backfill's fixed arguments and the windows they split into."""

    seller_id: str
    report_type: str
    marketplace_ids: tuple[str, ...]
    report_options: tuple[tuple[str, str], ...]
    start: datetime
    end: datetime

    @classmethod
    def of(
        cls,
        seller_id: str,
        report_type: str,
        marketplace_ids: list[str],
        start: datetime,
        end: datetime,
        report_options: dict[str, str] | None = None,
    ) -> BackfillPlan:
        """A plan in canonical form (times in UTC, marketplaces and options sorted)."""
        return cls(
            seller_id,
            report_type,
            tuple(sorted(set(marketplace_ids))),
            tuple(sorted((report_options or {}).items())),
            _utc(start),
            _utc(end),
        )

    @property
    def plan_id(self) -> str:
        """A stable id: the same arguments give the same plan, and so the same progress."""
        parts = [self.seller_id, self.report_type, self.marketplace_ids, self.report_options]
        canonical = json.dumps([*parts, self.start.isoformat(), self.end.isoformat()])
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    @property
    def windows(self) -> list[Window]:
        """The windows, each no longer than the type's maximum."""
        return split_windows(self.start, self.end, rules_for(self.report_type).max_window)

    def spec(self, window: Window) -> ReportSpec:
        """The request of one window."""
        return ReportSpec.of(
            self.seller_id,
            self.report_type,
            self.marketplace_ids,
            dict(self.report_options) or None,
            window.start,
            window.data_end_time,
        )


class BackfillProgress:
    """A plan's progress in Redis: one hash field per window that has been requested."""

    def __init__(self, client: redis.Redis, plan: BackfillPlan) -> None:
        self._redis = client
        self.plan = plan
        self.key = KEY_PREFIX + plan.plan_id

    def load(self) -> dict[int, dict[str, Any]]:
        """Window index -> its state (``state``, ``report_id``, ``report_document_id``, ``location``, ``reason``)."""
        raw = _redis_call(lambda: self._redis.hgetall(self.key))
        return {int(field): json.loads(value) for field, value in raw.items()}

    def save(self, index: int, **state: Any) -> None:
        """Record one window's state."""
        key = self.key

        def write() -> None:
            pipe = self._redis.pipeline()
            pipe.hset(key, str(index), json.dumps(state))
            pipe.expire(key, PROGRESS_TTL_SECONDS)
            pipe.execute()

        _redis_call(write)

    def mark_queued(self, index: int) -> bool:
        """True when the window's retrieval should be queued now (not queued within the last hour)."""
        mark = f"{self.key}:queued:{index}"
        return bool(_redis_call(lambda: self._redis.set(mark, 1, nx=True, ex=REQUEUE_SECONDS)))

    def summary(self) -> dict[str, Any]:
        """Counts per state and each window's state: what the task returns and the terminal shows."""
        states = self.load()
        windows = []
        for index, window in enumerate(self.plan.windows):
            state = states.get(index, {"state": "waiting"})
            windows.append({"start": window.start.isoformat(), "end": window.end.isoformat(), **state})
        counts = {name: sum(w["state"] == name for w in windows) for name in ("waiting", "requested", "retrieving")}
        counts.update({name: sum(w["state"] == name for w in windows) for name in FINAL})
        return {
            "backfill_id": self.plan.plan_id,
            "seller_id": self.plan.seller_id,
            "report_type": self.plan.report_type,
            "total": len(windows),
            "finished": counts["stored"] + counts["cancelled"] + counts["fatal"] == len(windows),
            **counts,
            "windows": windows,
        }


@dataclass(frozen=True)
class BackfillRound:
    """What one round needs besides the plan: the SP-API, the registry, the storage and the queue."""

    api: ReportApi
    registry: RequestRegistry
    #: The stored location of a document, or None.
    find: Callable[[str], str | None]
    #: Queue the retrieval of a finished window's document.
    enqueue: Callable[[Finished], None]
    reuse_done: timedelta
    check_amazon: bool
    parallel: int = 1


def run_round(
    progress: BackfillProgress,
    deps: BackfillRound,
    *,
    now: datetime,
    run_id: str,
    still_driving: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Move every window along once: follow those at Amazon, then request the next ones; returns the summary.

    ``run_id`` names the run (the same across its retries); ``still_driving`` is asked before each
    window is requested, and the round requests no more once it says False (another run took over).
    Lets the SP-API's transient errors through (a quota wait among them): everything done so far is
    in Redis, and the next round goes on from there.
    """
    plan = progress.plan
    states = progress.load()
    for index, state in sorted(states.items()):
        if state["state"] in ("requested", "retrieving"):
            _follow(progress, deps, index, state)
    states = progress.load()
    at_amazon = sum(state["state"] == "requested" for state in states.values())
    for index, window in enumerate(plan.windows):
        if at_amazon >= deps.parallel:
            break
        if index in states:
            continue
        if not still_driving():
            break
        obtained = obtain_report(
            plan.spec(window),
            deps.api,
            deps.registry,
            # The run's own claim: a retry of the run keeps it, another run of the plan never shares it.
            owner=f"backfill:{plan.plan_id}:{index}:{run_id}",
            reuse_done=deps.reuse_done,
            check_amazon=deps.check_amazon,
            now=now,
        )
        progress.save(index, state="requested", report_id=obtained.report_id, reused=obtained.reused)
        at_amazon += 1
    return progress.summary()


def _follow(progress: BackfillProgress, deps: BackfillRound, index: int, state: dict[str, Any]) -> None:
    report_id = state["report_id"]
    if state["state"] == "requested":
        try:
            finished = report_outcome(deps.api.get_report(report_id), progress.plan.seller_id)
        except ReportCancelled:
            progress.save(index, state="cancelled", report_id=report_id, reason="no data (CANCELLED)")
            return
        except ReportFatal as exc:
            progress.save(index, state="fatal", report_id=report_id, reason=str(exc))
            return
        if finished is None:
            return
        state = {"state": "retrieving", "report_id": report_id, "report_document_id": finished.report_document_id}
        progress.save(index, **state)
    document_id = state["report_document_id"]
    location = deps.find(document_id)
    if location is not None:
        progress.save(index, state="stored", report_id=report_id, report_document_id=document_id, location=location)
    elif progress.mark_queued(index):
        deps.enqueue(Finished(report_id, progress.plan.report_type, document_id))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _redis_call(action: Callable[[], Any]) -> Any:
    return redis_call("keeping the backfill's progress", action)
