"""The stuck pass over a fake getReports/cancelReport and fakeredis: what it requests again, cancels, defers,
leaves alone; the reuse check's one page; the specs the product remembers for the reports it made."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
import redis

from spreports.errors import InvalidRequest, QuotaWait, RedisUnavailable
from spreports.reports.obtain import ReportSpec, RequestRegistry, find_identical, obtain_report
from spreports.reports.stuck import PENDING, PENDING_REPLACEMENT_SECONDS, Replacements, handle_stuck_reports
from spreports.spapi.models import Report

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def report(report_id: str, status: str = "IN_QUEUE", age: timedelta = timedelta(hours=3)) -> Report:
    created = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"reportId": report_id, "reportType": LISTINGS, "processingStatus": status, "createdTime": created,
            "marketplaceIds": ["ATVPDKIKX0DER"]}  # fmt: skip
    return Report.model_validate(body)


class FakeAmazon:
    """getReports served in pages of ``page_size`` (Amazon's default 10), each page fetched only when reached."""

    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports
        self.pages_fetched = 0
        self.page_sizes: list[int | None] = []
        self.cancelled: list[str] = []
        self.created: list[dict[str, Any]] = []
        self.cancel_error: Exception | None = None

    def get_reports(
        self,
        report_types: Sequence[str] | None = None,
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Report]:
        self.page_sizes.append(page_size)
        size = page_size or 10
        matching = [
            r for r in self.reports if processing_statuses is None or r.processing_status in processing_statuses
        ]
        for start in range(0, len(matching), size):
            self.pages_fetched += 1
            yield from matching[start : start + size]

    def get_report(self, report_id: str) -> Report:
        return next(r for r in self.reports if r.report_id == report_id)

    def create_report(self, report_type: str, marketplace_ids: Sequence[str], **kwargs: Any) -> str:
        self.created.append({"report_type": report_type, "marketplace_ids": list(marketplace_ids), **kwargs})
        new_id = str(1000 + len(self.created))
        self.reports.insert(0, report(new_id, age=timedelta(0)))
        return new_id

    def cancel_report(self, report_id: str) -> None:
        if self.cancel_error is not None:
            raise self.cancel_error
        self.cancelled.append(report_id)


def obtain(spec: ReportSpec, amazon: FakeAmazon, store: fakeredis.FakeRedis, replaces: str | None = None) -> str:
    registry = RequestRegistry(store)
    obtained = obtain_report(spec, amazon, registry, owner="test", reuse_done=timedelta(0), check_amazon=True,
                             now=NOW, replaces=replaces)  # fmt: skip
    return obtained.report_id


def test_the_reuse_check_reads_one_page_and_never_asks_for_the_next() -> None:
    others = [report(str(n), age=timedelta(minutes=5)) for n in range(150)]  # none of them identical (a window)
    amazon = FakeAmazon(others)
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"], data_start_time=NOW - timedelta(days=1))
    assert find_identical(spec, amazon, timedelta(0), NOW) is None
    assert amazon.page_sizes == [100] and amazon.pages_fetched == 1


def test_the_product_remembers_the_spec_of_each_report_it_creates() -> None:
    store, amazon = fakeredis.FakeRedis(), FakeAmazon([])
    start, end = NOW - timedelta(days=2), NOW - timedelta(days=1)
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"], {"custom": "true"}, start, end)
    made = obtain(spec, amazon, store)
    assert RequestRegistry(store).made("S", made) == spec
    assert RequestRegistry(store).made("S", "not-made-by-us") is None
    assert 0 < store.ttl(f"spreports:report-made:S:{made}") <= 90 * 24 * 3600


def test_a_replacement_is_never_the_stuck_report_it_replaces() -> None:
    store, amazon = fakeredis.FakeRedis(), FakeAmazon([])
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"])
    stuck = obtain(spec, amazon, store)  # the registry and Amazon's list both offer it, IN_QUEUE
    assert obtain(spec, amazon, store) == stuck  # an ordinary request reuses it
    replacement = obtain(spec, amazon, store, replaces=stuck)
    assert replacement != stuck and len(amazon.created) == 2


def test_the_stuck_pass_requests_the_products_reports_again_once_and_leaves_the_others() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([report(str(n)) for n in range(12)] + [report("fresh", age=timedelta(minutes=5))])
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"], {"custom": "true"})
    ours = obtain(spec, amazon, store)
    amazon.reports[0] = report(ours)  # it has been waiting three hours now
    requeued: list[tuple[ReportSpec, str]] = []

    found = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append((s, r)))
    assert amazon.page_sizes[-1] == 100
    assert requeued == [(spec, ours)] and found.requested_again == [ours]
    assert sorted(found.not_ours) == sorted(str(n) for n in range(12)) and amazon.cancelled == []
    assert Replacements(store).of("S", ours) == PENDING
    assert store.hget(f"spreports:stuck:{LISTINGS}", "not_ours") == b"12"

    # Its replacement is still being requested: left to that request, not requested or cancelled again.
    again = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append((s, r)))
    assert again.requested_again == [] and amazon.cancelled == [] and len(requeued) == 1


def test_a_stuck_replacement_is_cancelled_not_requested_a_third_time_and_a_busy_quota_defers_only_that() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([])
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"])
    first = obtain(spec, amazon, store)
    second = obtain(spec, amazon, store, replaces=first)
    Replacements(store).record("S", first, second)
    amazon.reports = [report(second)]  # the replacement is stuck too
    amazon.cancel_error = QuotaWait("cancelReport: busy", retry_after=30.0)
    requeued: list[str] = []

    deferred = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert deferred.deferred == [second] and deferred.cancelled == [] and requeued == []
    amazon.cancel_error = None
    done = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert done.cancelled == [second] and amazon.cancelled == [second] and requeued == []


def test_a_requeue_that_fails_is_tried_again_by_the_next_pass() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([])
    stuck = obtain(ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"]), amazon, store)
    amazon.reports = [report(stuck)]

    def broker_down(spec: ReportSpec, replaces: str) -> None:
        raise ConnectionError("broker unreachable")

    with pytest.raises(ConnectionError):
        handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=broker_down)
    assert Replacements(store).of("S", stuck) is None
    requeued: list[str] = []
    found = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert requeued == [stuck] and found.requested_again == [stuck]


class ForgetfulAmazon(FakeAmazon):
    """Answers an id it does not know as Amazon does: 400 InvalidInput, "Invalid reportId"."""

    def get_report(self, report_id: str) -> Report:
        for known in self.reports:
            if known.report_id == report_id:
                return known
        error = InvalidRequest(f"Invalid reportId {report_id}.")
        error.status = 400
        raise error


def test_a_registered_report_amazon_no_longer_knows_is_forgotten_and_requested_anew() -> None:
    store, amazon = fakeredis.FakeRedis(), ForgetfulAmazon([])
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"], data_start_time=NOW - timedelta(days=1))
    first = obtain(spec, amazon, store)
    amazon.reports.clear()  # past Amazon's 90 days
    second = obtain(spec, amazon, store)
    assert second != first and len(amazon.created) == 2


def test_a_replacement_request_that_was_lost_is_requested_again_once_its_pending_mark_lapses() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([])
    stuck = obtain(ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"]), amazon, store)
    amazon.reports = [report(stuck)]
    requeued: list[str] = []
    handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert requeued == [stuck]
    # The request task's message is lost: its marks are not kept for Amazon's 90 days but for hours.
    assert 0 < store.ttl(f"spreports:stuck:replaced-by:S:{stuck}") <= PENDING_REPLACEMENT_SECONDS
    assert 0 < store.ttl(f"spreports:stuck:requeued:S:{stuck}") <= PENDING_REPLACEMENT_SECONDS
    store.delete(f"spreports:stuck:replaced-by:S:{stuck}", f"spreports:stuck:requeued:S:{stuck}")  # lapsed
    found = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert requeued == [stuck, stuck] and found.requested_again == [stuck] and amazon.cancelled == []


def test_a_stuck_report_with_its_replacement_recorded_is_cancelled_even_after_its_mark_lapsed() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([])
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"])
    stuck = obtain(spec, amazon, store)
    Replacements(store).record("S", stuck, obtain(spec, amazon, store, replaces=stuck))
    amazon.reports = [report(stuck)]  # the cancel of it failed then: still IN_QUEUE
    requeued: list[str] = []
    found = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert requeued == [] and found.cancelled == [stuck]


def test_a_redis_failure_before_the_requeue_leaves_no_mark_behind() -> None:
    store = fakeredis.FakeRedis()
    amazon = FakeAmazon([])
    stuck = obtain(ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"]), amazon, store)
    amazon.reports = [report(stuck)]
    real_set = store.set

    def pending_mark_fails(name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if str(name).startswith("spreports:stuck:replaced-by:") or (isinstance(name, bytes) and b"replaced-by" in name):
            raise redis.ConnectionError("Redis went away")
        return real_set(name, value, *args, **kwargs)

    store.set = pending_mark_fails  # type: ignore[method-assign]
    with pytest.raises(RedisUnavailable):
        handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: None)
    store.set = real_set  # type: ignore[method-assign]
    assert not store.exists(f"spreports:stuck:requeued:S:{stuck}")  # the next pass requests it, never cancels it
    requeued: list[str] = []
    found = handle_stuck_reports(amazon, store, "S", [LISTINGS], now=NOW, requeue=lambda s, r: requeued.append(r))
    assert requeued == [stuck] and found.cancelled == [] and amazon.cancelled == []


def test_a_redis_failure_after_create_report_answers_with_the_report_instead_of_creating_it_again() -> None:
    store, amazon = fakeredis.FakeRedis(), FakeAmazon([])
    real_set = store.set

    def bookkeeping_fails(name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if "report-made" in str(name):
            raise redis.ConnectionError("Redis went away")
        return real_set(name, value, *args, **kwargs)

    store.set = bookkeeping_fails  # type: ignore[method-assign]
    spec = ReportSpec.of("S", LISTINGS, ["ATVPDKIKX0DER"])
    made = obtain(spec, amazon, store)  # no RedisUnavailable: a retry would have made a second report
    assert made == "1001" and len(amazon.created) == 1
