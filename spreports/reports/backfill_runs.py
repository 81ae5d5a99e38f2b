"""One run drives a backfill at a time; the others follow it, and a dead one is taken over.

A *run* is one start of a backfill (the task's id: the same across its retries and redeliveries). Two
runs of the same plan must never both request a window, yet "start it again" must resume a backfill
whose run died. So a run moves windows only while it holds the plan's lease: a Redis key naming the
run and the moment it said it would be back (its heartbeat, renewed every round and before every
window it requests). A run that finds another's lease in force follows it: it reads the progress and
requests nothing. A lease whose run is late by more than ``grace`` is taken over by the next run that
asks; the run that held it, should it come back after all, finds the lease gone and follows too. The
lease remembers the run it was taken from, so the summary can say so.

Timestamps come from the caller's clock (the lease compares them, not Redis's TTL), so the rules can
be tested with a fake clock; the key's own TTL only clears leases of backfills long over.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from spreports.errors import InvalidRequest, RedisUnavailable
from spreports.reports.backfill import KEY_PREFIX, BackfillPlan, BackfillProgress, BackfillRound, run_round
from spreports.reports.obtain import Finished, RequestRegistry, resolve_target
from spreports.runtime import Runtime
from spreports.settings import Settings
from spreports.task_arguments import BackfillRequest, DocumentRequest

# How long a round may take: its lease is renewed before every window it requests anyway.
ROUND_HOLD = timedelta(seconds=60)
# A lease outlives its last due moment this long in Redis, so that late followers still see who drove.
KEEP_SECONDS = 24 * 3600

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """The run driving a plan, when it said it would be back, and the dead run it took over from."""

    run_id: str
    due: datetime
    took_over_from: str | None = None

    def overdue(self, now: datetime, grace: timedelta) -> bool:
        """Whether the run is late by more than ``grace``: taken for dead."""
        return now > self.due + grace


@dataclass(frozen=True)
class Taken:
    """A run's request for the lease: whether it drives now, and the lease in force after the request."""

    driving: bool
    lease: Lease
    #: The overdue lease this request replaced (set only by the request that took it over).
    replaced: Lease | None = None


class RunLease:
    """A plan's lease in Redis: which run drives it (see the module's docstring)."""

    def __init__(self, client: redis.Redis, plan_id: str, *, grace: timedelta) -> None:
        self._redis = client
        self.key = f"{KEY_PREFIX}{plan_id}:run"
        self.grace = grace

    def current(self) -> Lease | None:
        """The lease as it stands (overdue or not), or None when no run ever held it."""
        return _lease(_redis_call(lambda: self._redis.get(self.key)))

    def take(self, run_id: str, *, now: datetime, hold: timedelta) -> Taken:
        """Hold the lease until ``now + hold`` when it is free, ours, or overdue; else name the run holding it."""
        _check_run_id(run_id)
        args = (run_id, now.timestamp(), (now + hold).timestamp(), self.grace.total_seconds(), self._ttl(hold))
        taken, value, previous = _redis_call(lambda: self._redis.eval(_TAKE, 1, self.key, *args))
        lease = _lease(value)
        assert lease is not None  # the script always answers the lease in force
        replaced = _lease(previous) if taken and previous else None
        return Taken(bool(taken), lease, replaced if replaced is not None and replaced.run_id != run_id else None)

    def renew(self, run_id: str, *, now: datetime, hold: timedelta) -> bool:
        """Move the heartbeat to ``now + hold`` while ``run_id`` holds the lease; False once it lost it."""
        args = (run_id, (now + hold).timestamp(), self._ttl(hold))
        return bool(_redis_call(lambda: self._redis.eval(_RENEW, 1, self.key, *args)))

    def _ttl(self, hold: timedelta) -> int:
        return math.ceil((hold + self.grace).total_seconds()) + KEEP_SECONDS


# Atomic, so two runs never both believe they drive. ARGV: run, now, due, grace, ttl.
_TAKE = """
local raw = redis.call('GET', KEYS[1])
local took_over_from = nil
if raw then
  local lease = cjson.decode(raw)
  if lease.run == ARGV[1] then
    if type(lease.took_over_from) == 'string' then took_over_from = lease.took_over_from end
  elseif tonumber(ARGV[2]) <= lease.due + tonumber(ARGV[4]) then
    return {0, raw, raw}
  else
    took_over_from = lease.run
  end
end
local lease = {run = ARGV[1], due = tonumber(ARGV[3]), took_over_from = took_over_from}
local value = cjson.encode(lease)
redis.call('SET', KEYS[1], value, 'EX', ARGV[5])
return {1, value, raw or ''}
"""
# ARGV: run, due, ttl.
_RENEW = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local lease = cjson.decode(raw)
if lease.run ~= ARGV[1] then return 0 end
lease.due = tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(lease), 'EX', ARGV[3])
return 1
"""


def drive(
    progress: BackfillProgress,
    lease: RunLease,
    deps: BackfillRound,
    *,
    run_id: str,
    clock: Callable[[], datetime],
) -> dict[str, Any]:
    """One turn of run ``run_id``: a round when it holds (or takes over) the lease, else the driving run's progress.

    Returns the backfill's summary with ``run_id``, ``driven_by`` (the run holding the lease) and
    ``took_over_from`` (the dead run the driving run took over from, or None). A finished backfill is
    only read. Lets the round's errors through, as :func:`~spreports.reports.backfill.run_round` does.
    """
    summary = progress.summary()
    if summary["finished"]:
        return _with_runs(summary, run_id, lease.current())
    taken = lease.take(run_id, now=clock(), hold=ROUND_HOLD)
    plan_id = progress.plan.plan_id
    if taken.replaced is not None:
        late = (clock() - taken.replaced.due).total_seconds()
        log.warning("backfill %s: run %s is %.0f s late for its next round; run %s takes it over where it stopped",
                    plan_id, taken.replaced.run_id, late, run_id)  # fmt: skip
    if not taken.driving:
        log.info("backfill %s: run %s follows run %s, which drives it", plan_id, run_id, taken.lease.run_id)
        return _with_runs(summary, run_id, taken.lease)

    def still_driving() -> bool:
        return lease.renew(run_id, now=clock(), hold=ROUND_HOLD)

    summary = run_round(progress, deps, now=clock(), run_id=run_id, still_driving=still_driving)
    return _with_runs(summary, run_id, lease.current())


class BackfillRun:
    """One run of a backfill request on a process's runtime: its plan, its progress and the plan's lease.

    What the backfill task calls: :meth:`turn` once per round, :meth:`hold` before it goes away.
    """

    def __init__(self, runtime: Runtime, request: BackfillRequest, run_id: str, *,
                 enqueue: Callable[[DocumentRequest], None], clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.runtime = runtime
        self.request = request
        self.run_id = run_id
        self.enqueue = enqueue
        self.clock = clock
        self.progress = BackfillProgress(runtime.redis, plan_of(runtime.settings, request))
        grace = timedelta(seconds=runtime.settings.requests.backfill_takeover_seconds)
        self.lease = RunLease(runtime.redis, self.progress.plan.plan_id, grace=grace)

    def turn(self) -> dict[str, Any]:
        """One turn of the run (:func:`drive`): the backfill's summary; lets the SP-API's errors through."""
        return drive(self.progress, self.lease, self._round(), run_id=self.run_id, clock=self.clock)

    def hold(self, countdown: float) -> None:
        """Tell the followers when this run comes back (when it drives); a Redis outage only lets the lease lapse sooner."""
        try:
            self.lease.renew(self.run_id, now=self.clock(), hold=timedelta(seconds=countdown))
        except RedisUnavailable:
            log.warning("backfill run %s could not renew its lease (Redis unreachable)", self.run_id)

    def _round(self) -> BackfillRound:
        runtime, seller = self.runtime, self.progress.plan.seller_id

        def find(document_id: str) -> str | None:
            manifest = runtime.storage.find(seller, document_id)
            return None if manifest is None else manifest.location

        def enqueue(finished: Finished) -> None:
            self.enqueue(DocumentRequest(seller_id=seller, report_document_id=finished.report_document_id,
                                         report_id=finished.report_id, report_type=finished.report_type))  # fmt: skip

        options = runtime.settings.requests
        return BackfillRound(
            api=runtime.client(seller),
            registry=RequestRegistry(runtime.redis),
            find=find,
            enqueue=enqueue,
            reuse_done=timedelta(seconds=options.reuse_done_seconds),
            check_amazon=options.check_amazon,
            parallel=self.request.parallel,
        )


def plan_of(settings: Settings, request: BackfillRequest) -> BackfillPlan:
    """The plan of a backfill request (seller and marketplaces resolved from the settings)."""
    seller, marketplaces = resolve_target(settings, request.seller_id, request.marketplace_ids)
    return BackfillPlan.of(seller, request.report_type, marketplaces, request.data_start_time, request.data_end_time,
                           request.report_options)  # fmt: skip


def _with_runs(summary: dict[str, Any], run_id: str, lease: Lease | None) -> dict[str, Any]:
    return {
        **summary,
        "run_id": run_id,
        "driven_by": None if lease is None else lease.run_id,
        "took_over_from": None if lease is None else lease.took_over_from,
    }


def _lease(value: Any) -> Lease | None:
    if not value:
        return None
    data = json.loads(value)
    took_over_from = data.get("took_over_from")
    return Lease(
        str(data["run"]),
        datetime.fromtimestamp(float(data["due"]), UTC),
        took_over_from if isinstance(took_over_from, str) else None,
    )


def _check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 200:
        raise InvalidRequest("a backfill run needs an id of 1 to 200 characters")


def _redis_call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(f"the backfill's lease in Redis is unreachable ({type(exc).__name__})") from None
