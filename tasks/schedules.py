"""Tasks: keep every seller's report schedules equal to the schedules file, and make its ``[[requests]]``.

Beat sends :func:`check_report_schedules` when it starts and every 30 s: a cheap look (the file's digest
and the last sync, in Redis) that queues :func:`sync_report_schedules` only when a sync is due (beat
started, the file changed, or ``SPREPORTS_SCHEDULES_SYNC_INTERVAL`` passed), and queues
``spreports.request_report`` chained to ``spreports.follow_report`` for each ``[[requests]]`` entry whose
period began and was not requested yet, so that its document is stored with or without notifications.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import Celery, current_app, shared_task
from celery.signals import beat_init

from spreports import names
from spreports.errors import SettingsError, SpreportsError
from spreports.schedules import load_schedules_file, sync_schedules
from spreports.schedules.due_requests import due_requests, release
from spreports.schedules.runs import SyncState
from spreports.tasks import signatures
from spreports.tasks.context import TaskContext, context

log = logging.getLogger(__name__)

#: The sync lock lapses this long after its holder died; a live sync renews it after each seller.
SYNC_LOCK_TTL = timedelta(minutes=10)
#: A queued sync that no worker took within this is dropped (the next check queues another).
SYNC_QUEUED_TTL = timedelta(minutes=10)
#: A second beat started within this of the last sync does not sync again at its start.
BEAT_START_GRACE = timedelta(seconds=60)
#: A check left in the queue longer than this is stale: the next one (every 30 s) replaces it.
CHECK_EXPIRES_SECONDS = 25


@shared_task(name=names.SYNC_REPORT_SCHEDULES)
def sync_report_schedules(*, if_due: bool = False, beat_start: bool = False) -> dict[str, Any]:
    """Create the schedules Amazon lacks (cancel the unwanted ones with ``prune``), for every configured seller.

    Returns per seller the counts or the failure; ``{"skipped": why}`` when another sync holds the lock or,
    with ``if_due`` (sent by the check), when another sync already did the work.
    """
    ctx = context()
    settings = ctx.settings
    if settings.schedules_file is None:
        log.info("no SPREPORTS_SCHEDULES_FILE: nothing to schedule")
        return {}
    state = SyncState(ctx.redis)
    with state.lock(SYNC_LOCK_TTL) as lock:
        if lock is None:
            log.info("schedule sync skipped: another sync is running")
            return {"skipped": "another schedule sync is running"}
        state.clear_queued()
        desired = load_schedules_file(settings.schedules_file)
        now = datetime.now(UTC)
        if if_due and _why(state, desired.digest, now, settings.schedules_sync_interval, beat_start) is None:
            return {"skipped": "the schedules are in place: another sync just applied this file"}
        results: dict[str, Any] = {}
        for seller_id in settings.sellers():
            try:
                results[seller_id] = sync_schedules(ctx.client(seller_id), seller_id, desired, now=now)
            except SpreportsError as exc:
                # One seller's failure must not stop the others; sync is idempotent and the next period retries.
                log.warning("schedule sync for seller %s failed: %s", seller_id, exc)
                results[seller_id] = f"failed: {type(exc).__name__}: {exc}"
            lock.renew()
        state.record_applied(desired.digest, datetime.now(UTC))
    return results


def _why(state: SyncState, digest: str, now: datetime, interval: int, beat_start: bool) -> str | None:
    reason = state.due(digest, now, timedelta(seconds=interval))
    if reason is None and beat_start:
        last = state.applied()
        if last is not None and now - last.at >= BEAT_START_GRACE:
            reason = "beat started"
    return reason


@shared_task(name=names.CHECK_REPORT_SCHEDULES)
def check_report_schedules(*, beat_start: bool = False) -> dict[str, Any]:
    """Queue the schedule sync when it is due, and the ``[[requests]]`` whose period began; cheap otherwise."""
    return check(context(), current_app, datetime.now(UTC), beat_start=beat_start)


def check(ctx: TaskContext, app: Celery, now: datetime, *, beat_start: bool = False) -> dict[str, Any]:
    """The check at ``now``: what it queued (``sync``: the reason, ``requests``: how many) or the file's error."""
    settings = ctx.settings
    if settings.schedules_file is None:
        return {}
    try:
        desired = load_schedules_file(settings.schedules_file)
    except SettingsError as exc:
        # Loud on every check until the file is fixed; nothing is synced or requested from a broken file.
        log.error("%s", exc)
        return {"error": str(exc)}
    result: dict[str, Any] = {}
    state = SyncState(ctx.redis)
    reason = _why(state, desired.digest, now, settings.schedules_sync_interval, beat_start)
    if reason is not None and state.mark_queued(SYNC_QUEUED_TTL):
        signatures.schedule_sync(app, beat_start=beat_start, expires=int(SYNC_QUEUED_TTL.total_seconds())).apply_async()
        log.info("schedule sync queued: %s", reason)
        result["sync"] = reason
    requested = _request_due(ctx.redis, app, desired.requests, list(settings.sellers()), now)
    if requested:
        result["requests"] = requested
    return result


def _request_due(client: redis.Redis, app: Celery, entries: Any, sellers: list[str], now: datetime) -> int:
    count = 0
    for due in due_requests(client, entries, sellers, now):
        try:
            # The request alone only asks Amazon; the follower polls the report and stores its document, so
            # a [[requests]] entry's document arrives with no notifications at all (with them, the relay's
            # copy and the follower's are the same document, stored once). Its tasks are named by the period.
            signatures.request_then_follow(app, due.report_request(), task_ids=due.name).apply_async()
        except Exception:
            release(client, due)  # the period is tried again by the next check
            raise
        what = "restated" if due.restated else "requested"
        log.info("%s %s for seller %s, period from %s", what, due.entry.label, due.seller_id, due.period_start)
        count += 1
    return count


@beat_init.connect
def _check_at_beat_start(sender: Any, **_: object) -> None:
    # Beat's first check would otherwise wait a whole interval: schedules appear within seconds of start.
    signatures.schedule_check(sender.app, beat_start=True, expires=300).apply_async()
