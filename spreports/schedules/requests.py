"""Which ``[[requests]]`` entries are due: each entry once per period per seller, remembered in Redis."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis

from spreports.contracts import ReportRequest
from spreports.schedules.entries import RequestEntry
from spreports.schedules.periods import period_start
from spreports.schedules.runs import REQUEST_PREFIX, claim_request_period

__all__ = ["DueRequest", "due_requests", "release"]

#: A period's claim outlives the period by this much, so a late check never takes it again.
CLAIM_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class DueRequest:
    """One request to make now: an entry's period for one seller."""

    entry: RequestEntry
    seller_id: str
    period_start: datetime

    def task_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``spreports.request_report`` (checked by its own contract)."""
        window = self.entry.data_window(self.period_start)
        return ReportRequest.parse(
            report_type=self.entry.report_type,
            seller_id=self.seller_id,
            marketplace_ids=list(self.entry.marketplace_ids),
            data_start_time=None if window is None else window[0],
            data_end_time=None if window is None else window[1],
            report_options=self.entry.report_options or None,
        ).task_kwargs()


def due_requests(
    client: redis.Redis, entries: Iterable[RequestEntry], sellers: Iterable[str], now: datetime
) -> Iterator[DueRequest]:
    """The requests whose period has begun and that nobody made yet; each is claimed as it is yielded."""
    seller_ids = list(sellers)
    for entry in entries:
        every = entry.every_length
        start = period_start(now, every)
        for seller_id in seller_ids:
            if entry.applies_to(seller_id) and claim_request_period(
                client, seller_id, entry.key, start, every + CLAIM_MARGIN
            ):
                yield DueRequest(entry, seller_id, start)


def release(client: redis.Redis, due: DueRequest) -> None:
    """Give a claimed period back (its request could not be queued): the next check tries again."""
    client.delete(f"{REQUEST_PREFIX}{due.entry.key}:{due.seller_id}:{int(due.period_start.timestamp())}")
