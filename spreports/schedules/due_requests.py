"""Which ``[[requests]]`` entries are due: each entry once per period per seller, remembered in Redis.

An entry with ``restate`` also pulls each period's window again ``restate`` after the period began, once
per seller, and only for a period whose first pull was made (a new entry does not restate the past).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis

from spreports.schedules.entries import RequestEntry
from spreports.schedules.periods import period_start
from spreports.schedules.runs import claim_request_period, request_period_claimed, request_period_key
from spreports.task_arguments import ReportRequest

__all__ = ["DueRequest", "due_requests", "release"]

#: A period's claim outlives the period by this much, so a late check never takes it again.
CLAIM_MARGIN = timedelta(hours=1)
RESTATE_SUFFIX = ":restate"


@dataclass(frozen=True)
class DueRequest:
    """One request to make now: an entry's period for one seller (``restated``: its second pull)."""

    entry: RequestEntry
    seller_id: str
    period_start: datetime
    restated: bool = False

    @property
    def claim_key(self) -> str:
        """What the period's claim is remembered under (the restatement has its own)."""
        return self.entry.key + (RESTATE_SUFFIX if self.restated else "")

    @property
    def name(self) -> str:
        """A stable name of this request, unique per entry, seller, period and pull (task ids derive from it)."""
        return f"{self.claim_key.replace(':', '-')}-{self.seller_id}-{int(self.period_start.timestamp())}"

    def report_request(self) -> ReportRequest:
        """The arguments of ``spreports.request_report`` for this period (checked by their model)."""
        window = self.entry.data_window(self.period_start)
        return ReportRequest.parse(
            report_type=self.entry.report_type,
            seller_id=self.seller_id,
            marketplace_ids=list(self.entry.marketplace_ids),
            data_start_time=None if window is None else window[0],
            data_end_time=None if window is None else window[1],
            report_options=self.entry.report_options or None,
            restated=self.restated,
        )

    def task_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``spreports.request_report``."""
        return self.report_request().task_kwargs()


def due_requests(
    client: redis.Redis, entries: Iterable[RequestEntry], sellers: Iterable[str], now: datetime
) -> Iterator[DueRequest]:
    """The requests whose period has begun and that nobody made yet; each is claimed as it is yielded."""
    seller_ids = list(sellers)
    for entry in entries:
        every, restate = entry.every_length, entry.restate_after
        start = period_start(now, every)
        # A first pull is remembered until its restatement is due, so that it can be told it was made.
        first_ttl = every + CLAIM_MARGIN + (restate or timedelta(0))
        for seller_id in seller_ids:
            if not entry.applies_to(seller_id):
                continue
            if claim_request_period(client, seller_id, entry.key, start, first_ttl):
                yield DueRequest(entry, seller_id, start)
            if restate is None:
                continue
            pulled = period_start(now - restate, every)
            if request_period_claimed(client, seller_id, entry.key, pulled) and claim_request_period(
                client, seller_id, entry.key + RESTATE_SUFFIX, pulled, every + CLAIM_MARGIN
            ):
                yield DueRequest(entry, seller_id, pulled, restated=True)


def release(client: redis.Redis, due: DueRequest) -> None:
    """Give a claimed period back (its request could not be queued): the next check tries again."""
    client.delete(request_period_key(due.seller_id, due.claim_key, due.period_start))
