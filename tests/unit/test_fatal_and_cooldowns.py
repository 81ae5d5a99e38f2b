"""A FATAL report's reason (errorDetails), its counter per report type, and the cooldown it starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from spreports.errors import QuotaWait
from spreports.report_types import rules_for
from spreports.reports.cooldowns import CoolingDown, check_cooldown, cooldown_until, start_cooldown
from spreports.reports.fatal_ledger import MAX_REASON, FatalLedger, error_reason


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'{"errorDetails": "The date range is too large."}', "The date range is too large."),
        (b'\xef\xbb\xbf{"errorDetails": "with a BOM\\nand a newline"}', "with a BOM and a newline"),
        (b'{"errorDetails": {"code": "X"}}', '{"code": "X"}'),
        (b"Report failed: plain text", "Report failed: plain text"),
        (b'{"other": 1}', None),
        (b"", None),
    ],
)
def test_error_reason(document: bytes, reason: str | None) -> None:
    assert error_reason(document) == reason


def test_a_long_reason_is_cut() -> None:
    reason = error_reason(b'{"errorDetails": "' + b"x" * 5000 + b'"}')
    assert reason is not None and len(reason) == MAX_REASON and reason.endswith("…")


def test_the_ledger_counts_per_type_and_keeps_each_reports_reason() -> None:
    ledger = FatalLedger(fakeredis.FakeRedis())
    ledger.record("A1", "R1", "GET_X", "too large")
    ledger.record("A2", "R2", "GET_X", None)
    stats = ledger.stats("GET_X")
    assert (stats.count, stats.last_reason, stats.last_report, stats.last_seller) == (2, None, "R2", "A2")
    assert ledger.stats("GET_Y").count == 0
    assert ledger.reason_of("A1", "R1") == "too large" and ledger.reason_of("A1", "R9") is None


def test_a_cooldown_lasts_the_types_fatal_cooldown_and_is_per_options() -> None:
    client, now = fakeredis.FakeRedis(), [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    end = start_cooldown(client, "A1", "GET_X", {"a": "1"}, clock=clock)
    assert end == datetime.fromtimestamp(now[0], UTC) + rules_for("GET_X").fatal_cooldown
    assert cooldown_until(client, "A1", "GET_X", {"a": "1"}, clock=clock) == end
    assert cooldown_until(client, "A1", "GET_X", {"a": "2"}, clock=clock) is None  # other options
    assert cooldown_until(client, "A2", "GET_X", {"a": "1"}, clock=clock) is None  # other seller
    now[0] += rules_for("GET_X").fatal_cooldown.total_seconds() + 1
    assert cooldown_until(client, "A1", "GET_X", {"a": "1"}, clock=clock) is None


def test_a_cooldown_of_unknown_options_holds_every_request_of_the_type() -> None:
    client = fakeredis.FakeRedis()
    end = start_cooldown(client, "A1", "GET_X", None, duration=timedelta(minutes=5))
    assert cooldown_until(client, "A1", "GET_X", {"any": "thing"}) == end
    assert cooldown_until(client, "A1", "GET_X") == end


def test_check_cooldown_defers_as_a_wait_saying_until_when() -> None:
    client = fakeredis.FakeRedis()
    check_cooldown(client, "A1", "GET_X")  # nothing to wait for
    end = start_cooldown(client, "A1", "GET_X", duration=timedelta(minutes=10))
    with pytest.raises(CoolingDown) as caught:
        check_cooldown(client, "A1", "GET_X")
    assert isinstance(caught.value, QuotaWait) and caught.value.until == end
    assert 590 < (caught.value.retry_after or 0) <= 600
    assert f"deferred until {end.isoformat(timespec='seconds')}" in str(caught.value)
